/* Sign-in: check the key against the API, keep it for this tab, go where we came from. */
wacast.page('sign-in', () => {
  const W = wacast;
  const form = W.$('#sign-in-form');
  const params = new URLSearchParams(location.search);
  const why = params.get('why');
  if (why) W.showProblem(W.$('.problem', form), new Error(why));
  W.onSubmit(form, async (values) => {
    const key = values.key.trim();
    if (!key) throw new Error('Enter an API key.');
    W.setKey(key, '');
    let overview;
    try {
      overview = await W.api('GET', '/overview', { noRedirect: true });
    } catch (err) {
      W.setKey('', '');
      if (err.status === 401) throw new Error('This key is unknown, revoked or expired.');
      throw err;
    }
    W.setKey(key, overview.name || overview.tenant_id);
    const next = params.get('next') || '';
    location.assign(next.startsWith('/app/') && !next.startsWith('/app/sign-in') ? next : '/app/devices');
  });
  W.$('#api-key').focus();
});
