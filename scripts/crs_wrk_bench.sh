#!/usr/bin/env bash
# Throughput of the infraveil proxy with OWASP CRS at PL1 in block mode, against Debian's
# nginx + ModSecurity v3 + CRS, on the same backend, everything on 127.0.0.1, bounded duration.
#
#   bash scripts/crs_wrk_bench.sh [seconds-per-run (default 10)] [connections (default 32)]
#
# Needs: deno, wrk, nginx, libnginx-mod-http-modsecurity, modsecurity-crs, ../shared/crs.
# It first tries to load CRS v4.28 (../shared/crs) into ModSecurity; if nginx -t rejects it,
# it falls back to Debian's own CRS 3.3 and says so. Prints req/s of every setup and the ratios.
set -euo pipefail

DUR="${1:-10}"
CONN="${2:-32}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CRS="$(cd "$ROOT/../shared/crs" 2>/dev/null && pwd || true)"
WORK="$(mktemp -d /tmp/crs-wrk.XXXXXX)"
PIDS=()
NGINX_PID_FILE="$WORK/nginx.pid"

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -f "$NGINX_PID_FILE" ]; then kill "$(cat "$NGINX_PID_FILE")" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in deno wrk nginx; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install $tool)" >&2; exit 2; }
done
[ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] ||
  { echo "missing: libnginx-mod-http-modsecurity" >&2; exit 2; }
[ -n "$CRS" ] && [ -d "$CRS/rules" ] || { echo "missing: ../shared/crs" >&2; exit 2; }

P_BACKEND=18200 P_OURS=18201 P_OURS_OFF=18202 P_MODSEC=18203

# --- ModSecurity configuration (engine settings of modsecurity.conf-recommended) ---
cat > "$WORK/modsec-base.conf" <<CONF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
SecTmpDir $WORK
SecDataDir $WORK
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
SecPcreMatchLimit 100000
SecPcreMatchLimitRecursion 100000
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
CONF

write_modsec_rules() { # $1 = v4|v3
  if [ "$1" = v4 ]; then
    { cat "$WORK/modsec-base.conf"; echo "Include $CRS/crs-setup.conf.example"; echo "Include $CRS/rules/*.conf"; } > "$WORK/modsec.conf"
  else
    { cat "$WORK/modsec-base.conf"; echo "Include /etc/modsecurity/crs/crs-setup.conf"; echo "Include /usr/share/modsecurity-crs/rules/*.conf"; } > "$WORK/modsec.conf"
  fi
}

write_nginx_conf() {
  cat > "$WORK/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes 1;
pid $NGINX_PID_FILE;
error_log $WORK/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fastcgi;
  uwsgi_temp_path $WORK/uwsgi;
  scgi_temp_path $WORK/scgi;
  upstream backend { server 127.0.0.1:$P_BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$P_BACKEND;
    location / { return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:$P_MODSEC;
    modsecurity on;
    modsecurity_rules_file $WORK/modsec.conf;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
}

CRS_USED=""
write_modsec_rules v4
write_nginx_conf
if nginx -t -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx-t.log" 2>&1; then
  CRS_USED="CRS v4.28 (../shared/crs) in ModSecurity $(dpkg-query -W -f='${Version}' libmodsecurity3 2>/dev/null || echo v3)"
else
  echo "ModSecurity rejected CRS v4.28:" >&2
  grep -m3 -i "error\|emerg" "$WORK/nginx-t.log" >&2 || true
  write_modsec_rules v3
  nginx -t -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx-t.log" 2>&1 ||
    { cat "$WORK/nginx-t.log" >&2; exit 1; }
  CRS_USED="Debian's CRS $(dpkg-query -W -f='${Version}' modsecurity-crs) (v4.28 rejected)"
fi
nginx -c "$WORK/nginx.conf" -p "$WORK"

# --- our proxy, CRS PL1 block mode, and the same proxy with rules off ---
cat > "$WORK/ours.jsonc" <<CONF
{ "listen": "127.0.0.1:$P_OURS", "backend": "http://127.0.0.1:$P_BACKEND", "mode": "block",
  "rateLimit": { "enabled": false }, "tracing": { "enabled": false },
  "rules": { "baseline": false, "engine": "crs", "crsDir": "$CRS", "paranoia": 1 } }
CONF
cat > "$WORK/ours-off.jsonc" <<CONF
{ "listen": "127.0.0.1:$P_OURS_OFF", "backend": "http://127.0.0.1:$P_BACKEND", "mode": "block",
  "rateLimit": { "enabled": false }, "tracing": { "enabled": false },
  "rules": { "baseline": false, "engine": "none" } }
CONF
(cd "$ROOT" && exec deno run -A --quiet proxy/main.ts --config "$WORK/ours.jsonc") >"$WORK/ours.log" 2>&1 &
PIDS+=($!)
(cd "$ROOT" && exec deno run -A --quiet proxy/main.ts --config "$WORK/ours-off.jsonc") >"$WORK/ours-off.log" 2>&1 &
PIDS+=($!)

wait_port() {
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "port $1 did not come up" >&2
  cat "$WORK"/*.log >&2 || true
  exit 1
}
for p in $P_BACKEND $P_MODSEC $P_OURS $P_OURS_OFF; do wait_port "$p"; done

# A realistic browser request with a query string (CRS inspects every header and argument).
URL_PATH="/search?q=running+shoes+women%27s&page=2&sort=price_asc"
HDRS=(-H "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
  -H "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
  -H "Accept-Language: en-US,en;q=0.9" -H "Cookie: session=abc123; theme=dark")

# sanity: an attack is blocked by both WAFs
for p in $P_OURS $P_MODSEC; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/?id=1%27%20union%20select%20password%20from%20users--" "${HDRS[@]}")
  [ "$code" = 403 ] || { echo "port $p did not block an SQL injection (status $code)" >&2; exit 1; }
done

rps() { # port → req/s
  wrk -t2 -c"$CONN" -d"${DUR}s" "${HDRS[@]}" "http://127.0.0.1:$1$URL_PATH" 2>/dev/null |
    awk '/Requests\/sec/ {print $2}'
}
# warm up JIT, then measure
for p in $P_OURS $P_OURS_OFF $P_MODSEC; do wrk -t1 -c8 -d2s "${HDRS[@]}" "http://127.0.0.1:$p$URL_PATH" >/dev/null 2>&1; done
BACKEND=$(rps $P_BACKEND)
OURS=$(rps $P_OURS)
OURS_OFF=$(rps $P_OURS_OFF)
MODSEC=$(rps $P_MODSEC)

echo "wrk -t2 -c$CONN -d${DUR}s on 127.0.0.1, GET $URL_PATH"
echo "ModSecurity rules: $CRS_USED"
printf '%-44s %12s\n' "setup" "req/s"
printf '%-44s %12s\n' "backend alone (nginx return 200)" "$BACKEND"
printf '%-44s %12s\n' "infraveil proxy, CRS v4.28 PL1 block" "$OURS"
printf '%-44s %12s\n' "infraveil proxy, rules off" "$OURS_OFF"
printf '%-44s %12s\n' "nginx + ModSecurity v3 + CRS" "$MODSEC"
awk -v o="$OURS" -v m="$MODSEC" -v f="$OURS_OFF" 'BEGIN {
  printf "ratio ours/modsecurity: %.2fx (target >= 3x)\n", o / m;
  printf "ratio ours/rules-off:   %.0f%% (target >= 50%%)\n", 100 * o / f }'
