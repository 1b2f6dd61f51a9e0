#!/bin/sh
# The image's entrypoint: `<service> [args...]` runs `python -m wacast.<module> [args...]`;
# `wacast [args...]` runs the command line; anything else is refused with the list.
set -eu

usage() {
    cat <<'USAGE'
usage: docker run wacast SERVICE | wacast COMMAND...

services:
  device-gateway     devices, pairing, paced send lanes       (port 8081)
  campaign-service   leads, media, campaigns                  (port 8082)
  sequence-service   sequences and enrollments                (port 8083)
  report-service     Postgres read models and queries         (port 8084)
  webhook-service    signed webhooks, retries, delivery log   (port 8085)
  api-gateway        public HTTP API, WebSocket, dashboard    (port 8080)
  wa-simulator       the stand-in WhatsApp network            (port 8099)
command line:
  wacast ...         e.g. `wacast backup /data/backup`, `wacast projections rebuild`
USAGE
}

if [ "$#" -eq 0 ]; then
    usage
    exit 64
fi

name="$1"
shift
case "$name" in
    device-gateway) module="wacast.device_gateway" ;;
    campaign-service) module="wacast.campaign_service" ;;
    sequence-service) module="wacast.sequence_service" ;;
    report-service) module="wacast.report_service" ;;
    webhook-service) module="wacast.webhook_service" ;;
    api-gateway) module="wacast.api_gateway" ;;
    wa-simulator) module="wacast.wa_simulator" ;;
    wacast) exec wacast "$@" ;;
    help | -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "wacast-entrypoint: unknown service '$name'" >&2
        usage >&2
        exit 64
        ;;
esac
exec python -m "$module" "$@"
