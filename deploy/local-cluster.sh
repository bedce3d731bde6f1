#!/usr/bin/env bash
# A discovery cluster on this machine: one discoveryd per `discovery` entry of a service
# inventory (by default the repository's service-inventory.json: disc-1..3 on
# 127.0.0.1:8411-8413) and nginx in front of them on 127.0.0.1:8410, configured like
# deploy/nginx/discovery.conf. Logs, pid files, data and the generated configurations all
# live under one directory. See `deploy/local-cluster.sh --help`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
self="deploy/local-cluster.sh"

usage() {
  cat <<EOF
Usage: $self start|stop|status|restart [options]

  start     start every node of the inventory and nginx (what is already running is
            left alone), wait until every node is ready and nginx answers, and print
            the discovery.uri to give Presto/Trino
  stop      stop nginx, then the nodes (SIGTERM, SIGKILL after --stop-timeout)
  status    show every node and nginx; exit 0 when all run and are ready, 3 when
            nothing runs, 1 otherwise
  restart   stop, then start (data is kept)

Options (each also settable through the environment variable shown):
  --dir DIR             state directory: logs, pids, data, configs
                        [DISCOVERY_CLUSTER_DIR, default: var/local-cluster in the repository]
  --inventory FILE      service inventory to build the cluster from
                        [DISCOVERY_INVENTORY, default: service-inventory.json in the repository]
  --nginx-port PORT     port nginx listens on, on 127.0.0.1 [DISCOVERY_NGINX_PORT, default: 8410]
  --nginx-h2c-port PORT port nginx serves cleartext HTTP/2 on (Trino 483 and later),
                        on 127.0.0.1 [DISCOVERY_NGINX_H2C_PORT, default: 8420]
  --bin-dir DIR         directory holding discoveryd (and the discovery CLI)
                        [default: target/release, built with 'cargo build --release' if missing]
  --set KEY=VALUE       extra discoveryd setting for every node; repeatable
                        (e.g. --set readiness.warm-up=0s --set log.level=debug)
  --timeout SECONDS     how long start waits for readiness [DISCOVERY_START_TIMEOUT, default: 90]
  --stop-timeout SECS   how long stop waits before SIGKILL [default: 30]

Environment: DISCOVERYD (path of the discoveryd binary), DISCOVERY_CLI (path of the
discovery CLI), NGINX (path of the nginx binary).

The inventory and settings are read by 'start' when nothing runs yet; they are kept in
DIR and later commands (status, stop) use that copy. Data survives stop/start; remove
DIR to start from scratch.
EOF
}

# ---------------------------------------------------------------------------------------
# Options

command=""
dir="${DISCOVERY_CLUSTER_DIR:-$repo_root/var/local-cluster}"
inventory="${DISCOVERY_INVENTORY:-$repo_root/service-inventory.json}"
nginx_port="${DISCOVERY_NGINX_PORT:-8410}"
nginx_h2c_port="${DISCOVERY_NGINX_H2C_PORT:-8420}"
bin_dir=""
start_timeout="${DISCOVERY_START_TIMEOUT:-90}"
stop_timeout=30
settings=()

die() {
  printf '%s: %s\n' "$self" "$*" >&2
  exit 1
}

need_value() {
  [[ $# -ge 2 && -n "$2" ]] || die "option $1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    start | stop | status | restart)
      [[ -z "$command" ]] || die "one command at a time (got '$command' and '$1')"
      command="$1"
      shift
      ;;
    --dir) need_value "$@"; dir="$2"; shift 2 ;;
    --dir=*) dir="${1#*=}"; shift ;;
    --inventory) need_value "$@"; inventory="$2"; shift 2 ;;
    --inventory=*) inventory="${1#*=}"; shift ;;
    --nginx-port) need_value "$@"; nginx_port="$2"; shift 2 ;;
    --nginx-port=*) nginx_port="${1#*=}"; shift ;;
    --nginx-h2c-port) need_value "$@"; nginx_h2c_port="$2"; shift 2 ;;
    --nginx-h2c-port=*) nginx_h2c_port="${1#*=}"; shift ;;
    --bin-dir) need_value "$@"; bin_dir="$2"; shift 2 ;;
    --bin-dir=*) bin_dir="${1#*=}"; shift ;;
    --set) need_value "$@"; settings+=("$2"); shift 2 ;;
    --set=*) settings+=("${1#*=}"); shift ;;
    --timeout) need_value "$@"; start_timeout="$2"; shift 2 ;;
    --timeout=*) start_timeout="${1#*=}"; shift ;;
    --stop-timeout) need_value "$@"; stop_timeout="$2"; shift 2 ;;
    --stop-timeout=*) stop_timeout="${1#*=}"; shift ;;
    -h | --help | help) usage; exit 0 ;;
    *) printf '%s: unknown argument: %s\n\n' "$self" "$1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n "$command" ]] || { usage >&2; exit 2; }
if ! [[ "$nginx_port" =~ ^[0-9]+$ ]] || ((nginx_port < 1 || nginx_port > 65535)); then
  die "--nginx-port must be a port number, got '$nginx_port'"
fi
if ! [[ "$nginx_h2c_port" =~ ^[0-9]+$ ]] || ((nginx_h2c_port < 1 || nginx_h2c_port > 65535)); then
  die "--nginx-h2c-port must be a port number, got '$nginx_h2c_port'"
fi
[[ "$start_timeout" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
[[ "$stop_timeout" =~ ^[0-9]+$ ]] || die "--stop-timeout must be a number of seconds"
for setting in "${settings[@]}"; do
  [[ "$setting" == ?*=* ]] || die "--set expects KEY=VALUE, got '$setting'"
done
command -v python3 >/dev/null || die "python3 is needed (to read the JSON inventory and probe HTTP)"

if [[ "$command" == start || "$command" == restart ]]; then
  mkdir -p "$dir"
  # Keep the state directory out of git when it lies inside a work tree.
  [[ -e "$dir/.gitignore" ]] || printf '*\n' >"$dir/.gitignore"
fi
if [[ -d "$dir" ]]; then
  dir="$(cd "$dir" && pwd)"
fi

nodes_file="$dir/nodes.tsv"      # node-id <TAB> ip <TAB> port, from the inventory
port_file="$dir/nginx-port"      # nginx's port
inventory_copy="$dir/service-inventory.json"
nginx_dir="$dir/nginx"
nginx_conf="$nginx_dir/nginx.conf"

# Shows a command line in "how to call me again" hints: --dir only when not the default.
hint() {
  if [[ "$dir" == "$repo_root/var/local-cluster" ]]; then
    printf '%s %s' "$self" "$1"
  else
    printf '%s %s --dir %q' "$self" "$1" "$dir"
  fi
}

# ---------------------------------------------------------------------------------------
# Python helpers: JSON inventory, configuration files, HTTP probes (no jq, no curl needed).

read -r -d '' PY_HELPER <<'PYEOF' || true
import ipaddress, json, os, re, socket, sys, time, urllib.error, urllib.request

def fail(message):
    sys.stderr.write("local-cluster.sh: %s\n" % message)
    sys.exit(1)

def nodes_from_inventory(path):
    """[(node_id, ip, port)] of the discovery entries of an airlift service inventory."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail("cannot read the inventory %s: %s" % (path, e))
    environment = doc.get("environment")
    if not isinstance(environment, str) or not environment:
        fail("%s has no environment" % path)
    nodes = []
    for service in doc.get("services") or []:
        if service.get("type") != "discovery":
            continue
        node_id = service.get("nodeId")
        uri = (service.get("properties") or {}).get("http")
        if not node_id or not uri:
            fail("%s: a discovery entry needs a nodeId and an http property: %s" % (path, json.dumps(service)))
        m = re.fullmatch(r"http://(\[[^\]]+\]|[^:/]+):(\d+)/?", uri)
        if not m:
            fail("%s: %s: http must look like http://127.0.0.1:8411, got %s" % (path, node_id, uri))
        host, port = m.group(1).strip("[]"), int(m.group(2))
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = ipaddress.ip_address(socket.gethostbyname(host))
        if not ip.is_loopback:
            fail("%s: %s is on %s: a local cluster runs on loopback addresses only" % (path, node_id, ip))
        if not 0 < port < 65536:
            fail("%s: %s: bad port %d" % (path, node_id, port))
        nodes.append((node_id, str(ip), port))
    if not nodes:
        fail("%s lists no service of type discovery" % path)
    ids = [n[0] for n in nodes]
    if len(set(ids)) != len(ids):
        fail("%s: node ids are not unique: %s" % (path, ", ".join(ids)))
    return environment, nodes

def prepare(inventory, directory, nginx_port, h2c_port, template, settings):
    """Writes the node and nginx configurations of a cluster into directory."""
    environment, nodes = nodes_from_inventory(inventory)
    with open(inventory) as f:
        text = f.read()
    with open(os.path.join(directory, "service-inventory.json"), "w") as f:
        f.write(text)
    with open(os.path.join(directory, "nodes.tsv"), "w") as f:
        for node_id, ip, port in nodes:
            f.write("%s\t%s\t%d\n" % (node_id, ip, port))
    with open(os.path.join(directory, "nginx-port"), "w") as f:
        f.write("%d\n" % nginx_port)
    overrides = []
    for setting in settings:
        key, value = setting.split("=", 1)
        overrides.append((key.strip(), value.strip()))
    for node_id, ip, port in nodes:
        etc = os.path.join(directory, node_id, "etc")
        os.makedirs(etc, exist_ok=True)
        config = {
            "node.bind-ip": ip,
            "http-server.http.port": str(port),
            "store.data-dir": os.path.join(directory, node_id, "data"),
            "service-inventory.uri": "file:" + os.path.join(directory, "service-inventory.json"),
        }
        node = {"node.environment": environment, "node.id": node_id}
        for key, value in overrides:
            (node if key in node else config)[key] = value
        header = "# Generated by deploy/local-cluster.sh from %s; rewritten by every start.\n" % inventory
        with open(os.path.join(etc, "config.properties"), "w") as f:
            f.write(header + "".join("%s=%s\n" % kv for kv in config.items()))
        with open(os.path.join(etc, "node.properties"), "w") as f:
            f.write(header + "".join("%s=%s\n" % kv for kv in node.items()))
    write_nginx(directory, nodes, nginx_port, h2c_port, template, inventory)
    print(environment)

def nginx_string(value):
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')

SERVER_LINE = re.compile(r"^([ \t]*)server[ \t]+[^ \t;]+([^;\n]*);[^\n]*\n", re.M)

def write_nginx(directory, nodes, nginx_port, h2c_port, template, inventory):
    """nginx.conf for a private nginx, and discovery.conf: the template (the production
    example) with its upstream servers and listen addresses (HTTP/1.1 and cleartext
    HTTP/2) replaced."""
    with open(template) as f:
        text = f.read()
    block = re.search(r"(upstream\s+discovery\s*\{)(.*?)(\n\})", text, re.S)
    if not block:
        fail("%s has no 'upstream discovery { ... }' block" % template)
    body = block.group(2)
    servers = list(SERVER_LINE.finditer(body))
    if not servers:
        fail("%s: the upstream block has no server line" % template)
    indent, parameters = servers[0].group(1), servers[0].group(2)
    generated = "".join("%sserver %s:%d%s;  # %s\n" % (indent, ip, port, parameters, node_id)
                        for node_id, ip, port in nodes)
    # The first server line becomes the generated list; the other ones go.
    firsts = iter([generated])
    new_body = SERVER_LINE.sub(lambda m: next(firsts, ""), body)
    text = text[:block.start(2)] + new_body + text[block.end(2):]
    text, h2c = re.subn(r"^([ \t]*)listen[ \t]+[^;\n]*[ \t]http2[ \t]*;", r"\g<1>listen 127.0.0.1:%d http2;" % h2c_port, text, flags=re.M)
    text, plain = re.subn(r"^([ \t]*)listen[ \t]+(?![^;\n]*http2)[^;\n]+;", r"\g<1>listen 127.0.0.1:%d;" % nginx_port, text, flags=re.M)
    if plain != 1 or h2c != 1:
        fail("%s: expected one plain and one http2 listen directive, found %d and %d" % (template, plain, h2c))
    nginx_dir = os.path.join(directory, "nginx")
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(nginx_dir, "temp", sub), exist_ok=True)
    with open(os.path.join(nginx_dir, "discovery.conf"), "w") as f:
        f.write("# Generated by deploy/local-cluster.sh from %s\n# and %s; rewritten by every start.\n\n" % (template, inventory))
        f.write(text)
    q = lambda *parts: nginx_string(os.path.join(nginx_dir, *parts))
    user = "user root;\n" if os.geteuid() == 0 else ""
    with open(os.path.join(nginx_dir, "nginx.conf"), "w") as f:
        f.write(
            "# Generated by deploy/local-cluster.sh: a private nginx for the local discovery\n"
            "# cluster (nginx -p %(dir)s -c %(dir)s/nginx.conf). Everything it writes stays here.\n"
            "daemon off;\n%(user)sworker_processes 1;\npid %(pid)s;\nerror_log %(err)s notice;\n\n"
            "events {\n    worker_connections 512;\n}\n\n"
            "http {\n    access_log %(acc)s;\n"
            "    client_body_temp_path %(t1)s;\n    proxy_temp_path %(t2)s;\n"
            "    fastcgi_temp_path %(t3)s;\n    uwsgi_temp_path %(t4)s;\n    scgi_temp_path %(t5)s;\n\n"
            "    include %(inc)s;\n}\n" % {
                "dir": nginx_dir, "user": user, "pid": q("nginx.pid"), "err": q("error.log"),
                "acc": q("access.log"), "t1": q("temp", "client_body"), "t2": q("temp", "proxy"),
                "t3": q("temp", "fastcgi"), "t4": q("temp", "uwsgi"), "t5": q("temp", "scgi"),
                "inc": q("discovery.conf")})

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def probe(url):
    """(status, first line of the body); status 0 when there was no HTTP answer."""
    try:
        with OPENER.open(url, timeout=2) as r:
            return r.status, r.read(300).decode("utf-8", "replace").strip().splitlines()[:1]
    except urllib.error.HTTPError as e:
        return e.code, e.read(300).decode("utf-8", "replace").strip().splitlines()[:1]
    except Exception as e:
        return 0, [str(getattr(e, "reason", e))]

def probe_all(urls):
    for url in urls:
        status, line = probe(url)
        print("%d\t%s" % (status, (line[0] if line else "").replace("\t", " ")))

def wait(timeout, targets):
    """targets: name pid url ...; waits until every url answers 200 while every pid lives.
    Exit 0 when all are ready, 1 after the timeout, 2 when a process died; then the
    names of the culprits go to stdout, the explanation to stderr."""
    items = [targets[i:i + 3] for i in range(0, len(targets), 3)]
    deadline = time.monotonic() + timeout
    last = {}
    while True:
        pending = []
        for name, pid, url in items:
            if not alive(int(pid)):
                sys.stderr.write("%s (pid %s) exited\n" % (name, pid))
                print(name)
                sys.exit(2)
            status, line = probe(url)
            last[name] = "%s %s" % (status or "no answer:", line[0] if line else "")
            if status != 200:
                pending.append(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            for name in pending:
                sys.stderr.write("%s is not ready after %ds: %s\n" % (name, timeout, last[name]))
                print(name)
            sys.exit(1)
        time.sleep(0.2)

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True

command, args = sys.argv[1], sys.argv[2:]
if command == "prepare":
    prepare(args[0], args[1], int(args[2]), int(args[3]), args[4], args[5:])
elif command == "probe":
    probe_all(args)
elif command == "wait":
    wait(int(args[0]), args[1:])
else:
    fail("unknown helper command " + command)
PYEOF

py() {
  python3 -c "$PY_HELPER" "$@"
}

# ---------------------------------------------------------------------------------------
# Processes: pid files, and a process counts as ours only while its command line still
# names our configuration file (a stale pid reused by another program is not ours;
# neither is a zombie, whose command line is empty).

pid_of() { # pid-file -> pid, or nothing
  local pid=""
  if [[ -s "$1" ]]; then read -r pid <"$1" || true; fi
  [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s' "$pid"
  return 0
}

is_ours() { # pid marker
  local pid="$1" marker="$2"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
  fi
}

running_pid() { # pid-file marker -> pid when running
  local pid
  pid="$(pid_of "$1")"
  if is_ours "$pid" "$2"; then printf '%s' "$pid"; fi
}

node_ids=()
node_ips=()
node_ports=()
load_nodes() {
  node_ids=() node_ips=() node_ports=()
  [[ -s "$nodes_file" ]] || return 0
  local id ip port
  while IFS=$'\t' read -r id ip port; do
    [[ -n "$id" ]] || continue
    node_ids+=("$id") node_ips+=("$ip") node_ports+=("$port")
  done <"$nodes_file"
}

node_config() { printf '%s/%s/etc/config.properties' "$dir" "$1"; }
node_pid_file() { printf '%s/%s/discoveryd.pid' "$dir" "$1"; }
node_log() { printf '%s/%s/discoveryd.log' "$dir" "$1"; }
node_url() { printf 'http://%s:%s' "${node_ips[$1]}" "${node_ports[$1]}"; }
nginx_pid_file="$nginx_dir/launcher.pid"
node_pid() { running_pid "$(node_pid_file "$1")" "$(node_config "$1")"; }
nginx_pid() { running_pid "$nginx_pid_file" "$nginx_conf"; }
nginx_url() { printf 'http://127.0.0.1:%s' "$(cat "$port_file" 2>/dev/null || printf '%s' "$nginx_port")"; }

anything_running() {
  local i
  [[ -n "$(nginx_pid)" ]] && return 0
  for i in "${!node_ids[@]}"; do
    [[ -n "$(node_pid "${node_ids[$i]}")" ]] && return 0
  done
  return 1
}

find_nginx() {
  local candidate
  if [[ -n "${NGINX:-}" ]]; then
    [[ -x "$NGINX" ]] && { printf '%s' "$NGINX"; return 0; }
    return 1
  fi
  for candidate in "$(command -v nginx || true)" /usr/sbin/nginx /usr/local/sbin/nginx \
    /usr/local/nginx/sbin/nginx /opt/homebrew/bin/nginx; do
    [[ -n "$candidate" && -x "$candidate" ]] && { printf '%s' "$candidate"; return 0; }
  done
  return 1
}

find_discoveryd() {
  if [[ -n "${DISCOVERYD:-}" ]]; then
    [[ -x "$DISCOVERYD" ]] || die "DISCOVERYD=$DISCOVERYD is not an executable file"
    printf '%s' "$DISCOVERYD"
  elif [[ -n "$bin_dir" ]]; then
    [[ -x "$bin_dir/discoveryd" ]] || die "no discoveryd in --bin-dir $bin_dir"
    printf '%s' "$bin_dir/discoveryd"
  else
    local built="$repo_root/target/release/discoveryd"
    if [[ ! -x "$built" ]]; then
      command -v cargo >/dev/null || die "$built is missing and cargo is not installed to build it"
      echo "building discoveryd: cargo build --release (once)" >&2
      (cd "$repo_root" && cargo build --release --bin discoveryd --bin discovery) >&2
    fi
    printf '%s' "$built"
  fi
}

find_cli() { # optional: only used to print a hint
  if [[ -n "${DISCOVERY_CLI:-}" ]]; then
    printf '%s' "$DISCOVERY_CLI"
  elif [[ -n "$bin_dir" && -x "$bin_dir/discovery" ]]; then
    printf '%s' "$bin_dir/discovery"
  elif [[ -x "$repo_root/target/release/discovery" ]]; then
    printf '%s' "$repo_root/target/release/discovery"
  fi
}

nginx_args() { # the command line of our private nginx, after the binary
  local args=(-p "$nginx_dir/" -c "$nginx_conf")
  # -e (nginx 1.19.5+) keeps nginx from first opening its compiled-in error log.
  if "$1" -h 2>&1 | grep -q -- '-e filename'; then args+=(-e "$nginx_dir/error.log"); fi
  printf '%s\n' "${args[@]}"
}

tail_log() { # file: the last lines since the last start
  if [[ -s "$1" ]]; then
    echo "---- $1 (last lines):" >&2
    awk '/^==== /{n=0} {buf[n++]=$0} END{for(i=(n>20?n-20:0);i<n;i++) print buf[i]}' "$1" >&2
    echo "----" >&2
  fi
}

# Signals the given processes, waits up to stop_timeout for them to exit, then SIGKILLs
# what is left. Counts what it stopped in `stopped`.
stopped=0
terminate() { # name pid-file marker [name pid-file marker]...
  local -a names=() pids=() markers=() files=()
  while [[ $# -gt 0 ]]; do
    local pid
    pid="$(running_pid "$2" "$3")"
    if [[ -n "$pid" ]]; then
      names+=("$1") pids+=("$pid") markers+=("$3") files+=("$2")
      kill -TERM "$pid" 2>/dev/null || true
    else
      rm -f "$2"
    fi
    shift 3
  done
  [[ ${#pids[@]} -gt 0 ]] || return 0
  local deadline=$((SECONDS + stop_timeout)) i left
  while :; do
    left=0
    for i in "${!pids[@]}"; do
      is_ours "${pids[$i]}" "${markers[$i]}" && left=$((left + 1))
    done
    ((left == 0 || SECONDS >= deadline)) && break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if is_ours "${pids[$i]}" "${markers[$i]}"; then
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      echo "stopped ${names[$i]} (pid ${pids[$i]}) with SIGKILL: it did not exit within ${stop_timeout}s"
    else
      echo "stopped ${names[$i]} (pid ${pids[$i]})"
    fi
    stopped=$((stopped + 1))
    rm -f "${files[$i]}"
  done
}

# ---------------------------------------------------------------------------------------
# Commands

do_stop() {
  load_nodes
  if [[ ${#node_ids[@]} -eq 0 && ! -f "$nginx_pid_file" ]]; then
    echo "nothing to stop in $dir"
    return 0
  fi
  terminate nginx "$nginx_pid_file" "$nginx_conf"
  local -a targets=()
  local i
  for i in "${!node_ids[@]}"; do
    targets+=("${node_ids[$i]}" "$(node_pid_file "${node_ids[$i]}")" "$(node_config "${node_ids[$i]}")")
  done
  [[ ${#targets[@]} -eq 0 ]] || terminate "${targets[@]}"
  if ((stopped == 0)); then
    echo "the local cluster in $dir was not running"
  else
    echo "local discovery cluster stopped (data kept in $dir)"
  fi
}

do_status() {
  load_nodes
  if [[ ${#node_ids[@]} -eq 0 ]]; then
    echo "no local cluster in $dir (start one with: $(hint start))"
    return 3
  fi
  local -a urls=() pids=()
  local i pid
  for i in "${!node_ids[@]}"; do
    pid="$(node_pid "${node_ids[$i]}")"
    pids+=("$pid")
    urls+=("$(node_url "$i")/v1/health/ready")
  done
  pid="$(nginx_pid)"
  pids+=("$pid")
  urls+=("$(nginx_url)/v1/health/ready")
  local -a answers=()
  mapfile -t answers < <(py probe "${urls[@]}")

  local running=0 healthy=0 total=$((${#node_ids[@]} + 1)) name url state ready code text
  printf '%-10s %-24s %-8s %-8s %s\n' NAME ADDRESS PID RUNNING READY
  for i in "${!pids[@]}"; do
    if ((i < ${#node_ids[@]})); then
      name="${node_ids[$i]}" url="$(node_url "$i")"
    else
      name="nginx" url="$(nginx_url)"
    fi
    code="${answers[$i]%%$'\t'*}" text="${answers[$i]#*$'\t'}"
    if [[ -n "${pids[$i]}" ]]; then
      state="yes" running=$((running + 1))
      if [[ "$code" == 200 ]]; then
        ready="yes" healthy=$((healthy + 1))
      elif [[ "$code" == 0 ]]; then
        ready="no (no answer: $text)"
      else
        ready="no ($code: $text)"
      fi
    else
      state="no" ready="-"
    fi
    printf '%-10s %-24s %-8s %-8s %s\n' "$name" "$url" "${pids[$i]:--}" "$state" "$ready"
  done
  if ((healthy == total)); then
    echo "all up: discovery.uri=$(nginx_url)"
    return 0
  elif ((running == 0)); then
    echo "not running (start with: $(hint start))"
    return 3
  fi
  echo "degraded: $healthy of $total running and ready (logs in $dir)"
  return 1
}

print_usage_hint() {
  local environment="$1" cli i
  cat <<EOF

Local discovery cluster '$environment' is up: ${#node_ids[@]} nodes behind nginx.

Give every Presto/Trino node (etc/config.properties):

    discovery.uri=$(nginx_url)

with node.environment=$environment in etc/node.properties. Trino 477 and later also need
discovery.type=airlift-discovery; the coordinator needs discovery-server.enabled=false.
Examples: deploy/presto/ and deploy/trino/.

Status pages, one per node (its own view of the cluster; refreshes itself):
EOF
  for i in "${!node_ids[@]}"; do
    printf '    %-10s %s/ui/\n' "${node_ids[$i]}" "$(node_url "$i")"
  done
  cat <<EOF

Logs, pids and data: $dir (nodes: <node-id>/discoveryd.log, nginx: nginx/)
Status: $(hint status)
Stop:   $(hint stop)
EOF
  cli="$(find_cli)"
  if [[ -n "$cli" ]]; then
    printf 'Look:   %q --uri %s services\n' "$cli" "$(nginx_url)"
  fi
}

do_start() {
  local nginx_bin
  if ! nginx_bin="$(find_nginx)"; then
    if [[ -n "${NGINX:-}" ]]; then
      echo "$self: NGINX=$NGINX is not an executable file." >&2
    else
      echo "$self: nginx is not installed (it is the single address in front of the nodes)." >&2
    fi
    cat >&2 <<'EOF'
Install it, then run this again:
    sudo apt-get install -y nginx      (Debian, Ubuntu)
    sudo dnf install -y nginx          (Fedora, RHEL)
    brew install nginx                 (macOS)
This script does not install anything, and never starts the system nginx service: it
runs its own nginx with its own configuration and prefix under the cluster directory.
EOF
    return 1
  fi

  load_nodes
  local environment was_running=0
  if anything_running; then
    environment="$(py_environment)"
    was_running=1
  else
    [[ -f "$inventory" ]] || die "no inventory at $inventory"
    inventory="$(cd "$(dirname "$inventory")" && pwd)/$(basename "$inventory")"
    environment="$(py prepare "$inventory" "$dir" "$nginx_port" "$nginx_h2c_port" \
      "$repo_root/deploy/nginx/discovery.conf" "${settings[@]}")"
    load_nodes
  fi

  local i id pid binary="" started=0
  local -a wait_targets=()
  for i in "${!node_ids[@]}"; do
    id="${node_ids[$i]}"
    pid="$(node_pid "$id")"
    if [[ -z "$pid" ]]; then
      [[ -n "$binary" ]] || binary="$(find_discoveryd)"
      mkdir -p "$dir/$id"
      printf '\n==== %s: %s --config %s\n' "$(date -u +%FT%TZ)" "$binary" "$(node_config "$id")" >>"$(node_log "$id")"
      setsid "$binary" --config "$(node_config "$id")" </dev/null >>"$(node_log "$id")" 2>&1 &
      pid=$!
      printf '%s\n' "$pid" >"$(node_pid_file "$id")"
      echo "started $id on $(node_url "$i") (pid $pid, log $(node_log "$id"))"
      started=$((started + 1))
    fi
    wait_targets+=("$id" "$pid" "$(node_url "$i")/v1/health/ready")
  done

  pid="$(nginx_pid)"
  if [[ -z "$pid" ]]; then
    local -a args=()
    mapfile -t args < <(nginx_args "$nginx_bin")
    if ! "$nginx_bin" -t -q "${args[@]}" >"$nginx_dir/config-test.log" 2>&1; then
      echo "$self: nginx refuses the generated configuration $nginx_conf:" >&2
      cat "$nginx_dir/config-test.log" >&2
      do_stop >/dev/null
      return 1
    fi
    setsid "$nginx_bin" "${args[@]}" </dev/null >>"$nginx_dir/launcher.log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$nginx_pid_file"
    echo "started nginx on $(nginx_url) (pid $pid, logs $nginx_dir/)"
    started=$((started + 1))
  fi
  wait_targets+=(nginx "$pid" "$(nginx_url)/v1/health/ready")

  if ((was_running && started == 0)); then
    echo "the local cluster in $dir is already running"
  elif ((was_running)); then
    echo "the local cluster in $dir was partly running: started what was missing"
  fi
  echo "waiting up to ${start_timeout}s for every node to be ready and for nginx to answer..."
  local rc=0 culprits name
  culprits="$(py wait "$start_timeout" "${wait_targets[@]}")" || rc=$?
  if ((rc != 0)); then
    for name in $culprits; do
      if [[ "$name" == nginx ]]; then
        tail_log "$nginx_dir/launcher.log"
        tail_log "$nginx_dir/error.log"
      else
        tail_log "$(node_log "$name")"
      fi
    done
    echo "$self: the cluster did not come up; stopping it" >&2
    do_stop >&2 || true
    return 1
  fi
  print_usage_hint "$environment"
}

py_environment() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["environment"])' "$inventory_copy" 2>/dev/null ||
    echo "?"
}

case "$command" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  restart) do_stop && do_start ;;
esac
