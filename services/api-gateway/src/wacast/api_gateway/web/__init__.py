"""The web dashboard, served by the api-gateway on its own port (`/` and `/app/...`).

Pages are Jinja2 templates rendered on the server (layout, forms, labels, empty states);
a little vanilla JavaScript (`static/js`) fills them from the public JSON API with the
API key the sign-in page keeps in `sessionStorage`, and follows `/api/v1/live`. No build
step and nothing fetched from elsewhere at run time.

Register it in the app factory with `web_router(gw)` among the route handlers.
"""

from wacast.api_gateway.web.routes import TEMPLATE_CONFIG, web_router

__all__ = ["TEMPLATE_CONFIG", "web_router"]
