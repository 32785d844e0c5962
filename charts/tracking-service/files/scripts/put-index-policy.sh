#!/bin/sh
# Retention for Elasticsearch (ILM) and OpenSearch (ISM): PUT a policy that deletes indices older than
# $RETENTION_DAYS days and attach it to $INDEX_PREFIX-* (new indices via a template, existing ones directly).
# Idempotent (every call is a PUT of the same document). Never fails the Helm release: when the backend
# is unreachable or refuses, it says so on stderr and exits 0 (STRICT=1 makes that exit 1, for a manual run).
# Env: BACKEND (es|opensearch), HOST, PORT, TLS (on|off), TLS_VERIFY (on|off), INDEX_PREFIX, POLICY_NAME,
# RETENTION_DAYS, WAIT_SECONDS; optional CA_FILE, CERT_FILE + KEY_FILE, API_KEY or USERNAME/PASSWORD.
# Needs only sh and curl.
set -eu
: "${BACKEND:?}" "${HOST:?}" "${PORT:?}" "${INDEX_PREFIX:?}" "${POLICY_NAME:?}" "${RETENTION_DAYS:?}"

give_up() {
  echo "retention: $1; policy $POLICY_NAME not applied (the release is unaffected: apply it later by hand)" >&2
  [ "${STRICT:-0}" = 1 ] && exit 1
  exit 0
}

scheme=http
[ "${TLS:-off}" = on ] && scheme=https
base="$scheme://$HOST:$PORT"
set -- --silent --show-error --fail-with-body --max-time 30 -H "Content-Type: application/json"
[ "${TLS_VERIFY:-on}" = off ] && set -- "$@" --insecure
[ -n "${CA_FILE:-}" ] && set -- "$@" --cacert "$CA_FILE"
[ -n "${CERT_FILE:-}" ] && set -- "$@" --cert "$CERT_FILE" --key "${KEY_FILE:?KEY_FILE goes with CERT_FILE}"
if [ -n "${API_KEY:-}" ]; then
  set -- "$@" -H "Authorization: ApiKey $API_KEY"
elif [ -n "${USERNAME:-}" ]; then
  set -- "$@" --user "$USERNAME:${PASSWORD:-}"
fi

deadline=$(($(date +%s) + ${WAIT_SECONDS:-120}))
until curl "$@" --output /dev/null "$base/"; do
  [ "$(date +%s)" -ge "$deadline" ] && give_up "$base not reachable after ${WAIT_SECONDS:-120}s"
  sleep 5
done

days="${RETENTION_DAYS}d"
pattern="$INDEX_PREFIX-*"
meta='"_meta":{"managed_by":"tracking-service helm chart"}'
if [ "$BACKEND" = es ]; then
  echo "retention: ILM policy $POLICY_NAME deletes $pattern after $days"
  curl "$@" -X PUT "$base/_ilm/policy/$POLICY_NAME" --data-binary \
    "{\"policy\":{\"phases\":{\"delete\":{\"min_age\":\"$days\",\"actions\":{\"delete\":{}}}},$meta}}" \
    || give_up "PUT _ilm/policy/$POLICY_NAME failed"
  echo
  curl "$@" -X PUT "$base/_index_template/$POLICY_NAME" --data-binary \
    "{\"index_patterns\":[\"$pattern\"],\"priority\":200,\"template\":{\"settings\":{\"index.lifecycle.name\":\"$POLICY_NAME\"}},$meta}" \
    || give_up "PUT _index_template/$POLICY_NAME failed"
  echo
  curl "$@" -X PUT "$base/$pattern/_settings?allow_no_indices=true" --data-binary \
    "{\"index.lifecycle.name\":\"$POLICY_NAME\"}" || give_up "attaching the policy to $pattern failed"
  echo
elif [ "$BACKEND" = opensearch ]; then
  echo "retention: ISM policy $POLICY_NAME deletes $pattern after $days"
  policy="{\"policy\":{\"description\":\"tracking-service: delete after $days\",\"default_state\":\"hot\",\"states\":[{\"name\":\"hot\",\"actions\":[],\"transitions\":[{\"state_name\":\"delete\",\"conditions\":{\"min_index_age\":\"$days\"}}]},{\"name\":\"delete\",\"actions\":[{\"delete\":{}}],\"transitions\":[]}],\"ism_template\":[{\"index_patterns\":[\"$pattern\"],\"priority\":100}]}}"
  # An existing policy is replaced only with its current sequence number and primary term.
  current=$(curl "$@" "$base/_plugins/_ism/policies/$POLICY_NAME" 2>/dev/null || true)
  seq=$(printf '%s' "$current" | sed -n 's/.*"_seq_no"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
  term=$(printf '%s' "$current" | sed -n 's/.*"_primary_term"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
  query=""
  [ -n "$seq" ] && [ -n "$term" ] && query="?if_seq_no=$seq&if_primary_term=$term"
  curl "$@" -X PUT "$base/_plugins/_ism/policies/$POLICY_NAME$query" --data-binary "$policy" \
    || give_up "PUT _plugins/_ism/policies/$POLICY_NAME failed"
  echo
  # Indices created before the policy existed (already managed ones are reported and left as they are).
  curl "$@" -X POST "$base/_plugins/_ism/add/$pattern" --data-binary "{\"policy_id\":\"$POLICY_NAME\"}" \
    || give_up "adding the policy to $pattern failed"
  echo
else
  echo "retention: unknown BACKEND $BACKEND" >&2
  exit 2
fi
echo "retention: done"
