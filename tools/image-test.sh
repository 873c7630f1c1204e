#!/usr/bin/env bash
# Builds the real Dockerfile with podman and proves the image runs: as
# nonroot, on a read-only root filesystem with every capability dropped,
# `authsvc dev` answers health SERVING and a VerifySession, and
# `authsvc migrate` migrates a fresh Postgres database (run under
# tools/with-postgres.sh, which provides one).
#
# No registry is needed: the Dockerfile's two base images are stood in for
# by images built here, tagged with the names the Dockerfile uses:
#   golang:1.26                             busybox and the local Go toolchain
#   gcr.io/distroless/static-debian12:nonroot  CA certificates and a nonroot user
# Go modules come from the local module cache through a file:// GOPROXY,
# so the build needs no network either. Everything podman stores lives in a
# temporary directory removed at the end.
#
# Needs root (podman with chroot isolation, runc). On Debian it installs
# what is missing (podman, runc, busybox-static, curl, the Postgres client).
# Prints the image's size and its start-up time to SERVING.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'image-test: %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (podman with chroot isolation and runc); elsewhere use docker build ."
[ -n "${TEST_DATABASE_URL:-}" ] || fail "TEST_DATABASE_URL is not set: run under tools/with-postgres.sh"

# --- tools -------------------------------------------------------------
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || fail "missing ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
runc=$(command -v runc || echo /usr/sbin/runc)

goversion=$(go env GOVERSION)
case "$goversion" in
go1.26 | go1.26.*) ;;
*) fail "the golang:1.26 stand-in needs Go 1.26 here, found $goversion" ;;
esac

# --- workspace ---------------------------------------------------------
work=$(mktemp -d /tmp/authsvc-image-test.XXXXXX)
P=(podman --root "$work/root" --runroot "$work/run" --storage-driver overlay
  --cgroup-manager cgroupfs --events-backend file)
container=authsvc-image-test-$$
dbname=""
cleanup() {
  "${P[@]}" rm -f -t 0 "$container" >/dev/null 2>&1 || true
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  if [ -n "$dbname" ]; then
    psql "$TEST_DATABASE_URL" -qXc "DROP DATABASE IF EXISTS $dbname" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# Cache mounts of the build land under TMPDIR: keep them in the workspace.
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"

# --- stand-in base images ----------------------------------------------
log "building the stand-in base images"
goroot=$(go env GOROOT)
golang="$work/golang"
mkdir -p "$golang"/{bin,etc/ssl/certs,go,root,tmp}
chmod 1777 "$golang/tmp"
cp /bin/busybox "$golang/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$golang/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$golang/etc/passwd"
printf 'root:x:0:\n' >"$golang/etc/group"
cp /etc/ssl/certs/ca-certificates.crt "$golang/etc/ssl/certs/"
# GNU tar: the workspace at /, the toolchain at /usr/local/go (without its
# own test suite), in one layer.
# Members from the workspace start with ./, the toolchain's with its
# directory's name, which the transform renames.
gobase=$(basename "$goroot")
tar -c --numeric-owner --owner=0 --group=0 \
  --anchored --exclude="$gobase/test" --exclude="$gobase/api" --exclude="$gobase/doc" \
  --transform "s,^$gobase\(/\|\$\),usr/local/go\1," \
  -C "$golang" . -C "$(dirname "$goroot")" "$gobase" |
  "${P[@]}" import -q \
    --change "ENV GOLANG_VERSION=${goversion#go}" \
    --change 'ENV GOTOOLCHAIN=local' \
    --change 'ENV GOPATH=/go' \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /go' \
    - docker.io/library/golang:1.26 >/dev/null

static="$work/static"
mkdir -p "$static"/{etc/ssl/certs,home/nonroot,tmp}
chmod 1777 "$static/tmp"
chmod 700 "$static/home/nonroot"
chown 65532:65532 "$static/home/nonroot"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$static/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$static/etc/group"
cp /etc/ssl/certs/ca-certificates.crt "$static/etc/ssl/certs/"
tar -c --numeric-owner -C "$static" . |
  "${P[@]}" import -q - gcr.io/distroless/static-debian12:nonroot >/dev/null

# --- build -------------------------------------------------------------
log "downloading modules into the local cache"
go mod download
modcache=$(go env GOMODCACHE)

# Without a network (a namespace with no interfaces) where that is allowed,
# to prove the build needs none.
offline=()
if unshare -n true 2>/dev/null; then
  offline=(unshare -n --)
fi
log "building the Dockerfile${offline:+ (offline)}"
start=$(date +%s)
"${offline[@]}" "${P[@]}" build --pull=never --isolation chroot \
  --volume "$modcache/cache/download:/goproxy:ro" \
  --build-arg GOPROXY=file:///goproxy \
  --build-arg VERSION=image-test \
  -t localhost/authsvc:image-test . >"$work/build.log" 2>&1 ||
  {
    tail -n 40 "$work/build.log" >&2
    fail "podman build"
  }
log "built in $(($(date +%s) - start))s"

size=$("${P[@]}" image inspect --format '{{.Size}}' localhost/authsvc:image-test)
user=$("${P[@]}" image inspect --format '{{.Config.User}}' localhost/authsvc:image-test)
[ "$user" = nonroot:nonroot ] || fail "the image runs as '$user', want nonroot:nonroot"

# --- run ---------------------------------------------------------------
run=("${P[@]}" --runtime "$runc" run --network host --read-only --read-only-tmpfs=false
  --cap-drop all --security-opt no-new-privileges
  --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

port=""
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    port=$candidate
    break
  fi
done
[ -n "$port" ] || fail "no free port"
base="http://127.0.0.1:$port"

health() {
  curl -s --max-time 2 -H 'Content-Type: application/json' -d '{}' "$base/grpc.health.v1.Health/Check" || true
}

log "starting authsvc dev on $base"
t0=$(date +%s%N)
"${run[@]}" -d --name "$container" -e AUTHSVC_ADDR="127.0.0.1:$port" \
  localhost/authsvc:image-test dev >/dev/null
serving=""
for _ in $(seq 1 600); do
  if health | grep -q '"SERVING_STATUS_SERVING"'; then
    serving=$(date +%s%N)
    break
  fi
  if [ "$("${P[@]}" inspect --format '{{.State.Running}}' "$container")" != true ]; then
    "${P[@]}" logs "$container" >&2 || true
    fail "authsvc dev exited"
  fi
  sleep 0.05
done
if [ -z "$serving" ]; then
  "${P[@]}" logs "$container" >&2 || true
  fail "health never answered SERVING (last: $(health))"
fi
startup_ms=$(((serving - t0) / 1000000))

pid=$("${P[@]}" inspect --format '{{.State.Pid}}' "$container")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 65532 ] || fail "authsvc runs as uid $uid, want 65532 (nonroot)"
[ "$("${P[@]}" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$container")" = true ] ||
  fail "the root filesystem is writable"

token=$(curl -sf --max-time 5 "$base/dev/token" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || fail "GET /dev/token gave no token"
user_id=$(curl -sf --max-time 5 "$base/dev/token" | sed -n 's/.*"user_id":"\([^"]*\)".*/\1/p')
verified=$(curl -s --max-time 5 -H 'Content-Type: application/json' \
  -d '{"token":"'"$token"'","includeUser":true}' "$base/authsvc.v1.AuthService/VerifySession")
case "$verified" in
*'"userId":"'"$user_id"'"'*'"user":'*) ;;
*) fail "VerifySession answered: $verified" ;;
esac
refused=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"token":"not-a-token"}' "$base/authsvc.v1.AuthService/VerifySession")
[ "$refused" = 401 ] || fail "VerifySession of a bad token answered HTTP $refused, want 401"

"${P[@]}" stop -t 10 "$container" >/dev/null
exit_code=$("${P[@]}" inspect --format '{{.State.ExitCode}}' "$container")
[ "$exit_code" = 0 ] || {
  "${P[@]}" logs "$container" >&2 || true
  fail "authsvc dev exited $exit_code on SIGTERM"
}
"${P[@]}" rm "$container" >/dev/null

# --- migrate -----------------------------------------------------------
dbname="authsvc_image_test_$$_$RANDOM"
psql "$TEST_DATABASE_URL" -qXc "CREATE DATABASE $dbname" >/dev/null
dburl=$(printf '%s' "$TEST_DATABASE_URL" | sed -E "s,^(postgres(ql)?://[^/]*)/[^?]*,\1/$dbname,")
for attempt in first second; do
  "${run[@]}" --rm -e DATABASE_URL="$dburl" localhost/authsvc:image-test migrate >"$work/migrate.log" 2>&1 ||
    {
      cat "$work/migrate.log" >&2
      fail "migrate ($attempt run)"
    }
done
tables=$(psql "$dburl" -AtqXc "select count(*) from information_schema.tables where table_schema = 'public'")
[ "$tables" -gt 1 ] || fail "migrate left $tables tables"

printf 'image-test: ok: image %s MB (%s bytes), SERVING %s ms after podman run, migrate created %s tables\n' \
  "$((size / 1000000))" "$size" "$startup_ms" "$tables"
