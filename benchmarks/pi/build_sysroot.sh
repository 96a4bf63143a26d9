#!/usr/bin/env bash
# Build an arm64 (aarch64) CPython sysroot from Debian's packages plus edgemri's aarch64 wheels
# from PyPI, to run the real Raspberry Pi runtime stack under qemu-user on an x86 machine.
#
# WHY a sysroot and not a VM: qemu-aarch64-static runs one aarch64 process in seconds; the
# interpreter, libc and the wheels' native code are the very binaries a 64-bit Raspberry Pi OS
# (bookworm, Debian 12) runs. Timings under emulation mean nothing; results do.
#
# Usage: benchmarks/pi/build_sysroot.sh [--python 3.11] [--board pi4|pi5] [--cache DIR]
#   env: EDGEMRI_PI_CACHE (default ~/.cache/edgemri-pi), PYTHON (host python with pip; default
#        .venv/bin/python else python3), EDGEMRI_PI_LITERT (litert requirement; default: the
#        version pinned in constraints.txt).
# Prints the sysroot path on the last line. Idempotent: .debs, the apt lists and wheels are
# cached; the rootfs is re-extracted only when the package set changes, site-packages only when
# the wheel set (or the edgemri wheel built from this checkout) changes. Needs no root: apt runs
# with a private configuration, so the host's apt and dpkg state is never touched.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYVER=3.11
BOARD=pi4
CACHE="${EDGEMRI_PI_CACHE:-$HOME/.cache/edgemri-pi}"
SUITE=bookworm  # Raspberry Pi OS (64-bit) is built on Debian 12 bookworm
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYVER="$2"; shift 2 ;;
    --board) BOARD="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1. See --help." >&2; exit 2 ;;
  esac
done
if [ "$PYVER" != 3.11 ]; then
  echo "error: Debian $SUITE ships no arm64 python$PYVER (only 3.11; trixie has 3.13, no Debian suite has 3.12)." \
       "Use --python 3.11; resolve_wheels.py still checks 3.12 wheels." >&2
  exit 2
fi
case "$BOARD" in
  pi4) CPU_PART=0xd08 CPU_REV=3 FEATURES="fp asimd evtstrm crc32 cpuid" MODEL="Raspberry Pi 4 Model B Rev 1.5" ;;
  pi5) CPU_PART=0xd0b CPU_REV=1 FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" MODEL="Raspberry Pi 5 Model B Rev 1.0" ;;
  *) echo "error: unknown board $BOARD. Use pi4 or pi5." >&2; exit 2 ;;
esac
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
CACHE="$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)"
APT="$CACHE/apt-$SUITE-arm64"
SYSROOT="$CACHE/sysroot-$SUITE-py$PYVER"
log() { echo "[build_sysroot] $*" >&2; }

# ---- 1. Debian arm64 packages: a private apt configuration (arm64 only, empty dpkg status) ----
setup_apt() {
  mkdir -p "$APT"/{lists/partial,archives/partial,cache,etc/sources.list.d,etc/preferences.d,etc/apt.conf.d}
  touch "$APT/status"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -r "$keyring" ] || { echo "error: $keyring missing. Install it: apt-get install debian-archive-keyring" >&2; exit 1; }
  cat > "$APT/etc/sources.list" <<EOF
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian $SUITE main
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian $SUITE-updates main
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian-security $SUITE-security main
EOF
  cat > "$APT/apt.conf" <<EOF
Dir::Etc "$APT/etc/";
Dir::Etc::SourceList "$APT/etc/sources.list";
Dir::Etc::SourceParts "$APT/etc/sources.list.d/";
Dir::Etc::Parts "$APT/etc/apt.conf.d/";
Dir::Etc::Preferences "$APT/etc/preferences";
Dir::Etc::PreferencesParts "$APT/etc/preferences.d/";
Dir::State "$APT/";
Dir::State::Lists "$APT/lists/";
Dir::State::status "$APT/status";
Dir::Cache "$APT/cache/";
Dir::Cache::archives "$APT/archives/";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
Debug::NoLocking "true";
EOF
  export APT_CONFIG="$APT/apt.conf"
  # Refresh the package lists once a day: security updates replace .debs, the rest stays cached.
  if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    log "apt-get update (arm64, $SUITE)"
    apt-get update -qq >&2
  fi
}

# python3.11 pulls libc6, libssl3, libffi8, libexpat1, zlib1g, libsqlite3 ...; libstdc++6 and
# libgcc-s1 are what the numpy/pillow/litert wheels' native code needs beyond what they bundle.
DEB_ROOTS=("python$PYVER" libstdc++6 libgcc-s1)

download_debs() {
  # apt resolves the dependency closure against an empty dpkg status: every .deb the interpreter needs.
  apt-get install --download-only -y -qq "${DEB_ROOTS[@]}" >&2
  apt-get install -s -y "${DEB_ROOTS[@]}" 2>/dev/null | awk '/^Inst /{print $2, substr($3, 2)}' | sort > "$APT/closure.txt"
  DEBS=()
  local name version file
  while read -r name version; do
    file=$(ls "$APT/archives/${name}_${version/:/%3a}_"*.deb 2>/dev/null | head -1)
    [ -n "$file" ] || { echo "error: ${name} ${version} was not downloaded into $APT/archives" >&2; exit 1; }
    DEBS+=("$file")
  done < "$APT/closure.txt"
  log "${#DEBS[@]} Debian arm64 packages (python$PYVER $(awk -v p="python$PYVER" '$1==p{print $2}' "$APT/closure.txt"))"
}

extract_rootfs() {
  local stamp; stamp=$(printf '%s\n' "${DEBS[@]##*/}" | sha256sum | cut -c1-16)
  if [ -f "$SYSROOT/.rootfs-stamp" ] && [ "$(cat "$SYSROOT/.rootfs-stamp")" = "$stamp" ]; then
    log "rootfs up to date ($SYSROOT)"
    return
  fi
  log "extracting ${#DEBS[@]} packages into $SYSROOT"
  local tmp="$SYSROOT.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for deb in "${DEBS[@]}"; do dpkg-deb -x "$deb" "$tmp"; done
  echo "$stamp" > "$tmp/.rootfs-stamp"
  rm -rf "$SYSROOT"
  mv "$tmp" "$SYSROOT"
}

# ---- 2. aarch64 wheels from PyPI: edgemri (built from this checkout) + its [litert] closure ----
install_wheels() {
  local json="$CACHE/wheels-py$PYVER.json" args=(--python "$PYVER" --json --offline-first)
  if [ -n "${EDGEMRI_PI_LITERT:-}" ]; then
    args+=(--litert "$EDGEMRI_PI_LITERT")
  else
    args+=(--constraints "$REPO/constraints.txt")  # same versions as the x86 venv
  fi
  EDGEMRI_PI_CACHE="$CACHE" "$PYTHON" "$HERE/resolve_wheels.py" "${args[@]}" > "$json.tmp"
  mv "$json.tmp" "$json"
  local wheels stamp
  mapfile -t wheels < <("$PYTHON" -c 'import json,sys; [print(w["path"]) for w in json.load(open(sys.argv[1]))[sys.argv[2]]]' "$json" "$PYVER")
  stamp=$(sha256sum "${wheels[@]}" | sha256sum | cut -c1-16)
  local site="$SYSROOT/site-packages"
  if [ -f "$site/.wheels-stamp" ] && [ "$(cat "$site/.wheels-stamp")" = "$stamp" ]; then
    log "site-packages up to date (${#wheels[@]} wheels)"
    return
  fi
  log "unpacking ${#wheels[@]} aarch64 wheels into $site"
  local tmp="$site.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  "$PYTHON" - "$tmp" "${wheels[@]}" <<'EOF'
import sys, zipfile
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as zf:  # a wheel is a zip of the site-packages tree
        zf.extractall(sys.argv[1])
EOF
  echo "$stamp" > "$tmp/.wheels-stamp"
  rm -rf "$site"
  mv "$tmp" "$site"
}

# ---- 3. what a Raspberry Pi's kernel would show the process ----
# qemu-user 7.2 passes the HOST's /proc/cpuinfo (x86) to the aarch64 guest, and the cpuinfo
# library inside ai-edge-litert >= 2.2 dereferences NULL when it finds no ARM core there (the
# "2.3.0 segfaults under qemu" finding). With -L, qemu resolves absolute paths inside the sysroot
# first, so a Pi-like /proc/cpuinfo here is what the guest reads. One entry per host CPU keeps it
# consistent with the host's /sys/devices/system/cpu, which still shows through.
write_cpuinfo() {
  local n; n=$(getconf _NPROCESSORS_CONF 2>/dev/null || echo 1)
  mkdir -p "$SYSROOT/proc"
  {
    for ((i = 0; i < n; i++)); do
      printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x%s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
        "$i" "$FEATURES" "$([ "$BOARD" = pi5 ] && echo 4 || echo 0)" "$CPU_PART" "$CPU_REV"
    done
    printf 'Hardware\t: BCM2835\nModel\t\t: %s\n' "$MODEL"
  } > "$SYSROOT/proc/cpuinfo"
  echo "$BOARD" > "$SYSROOT/.board"
}

# ---- 4. a host-side launcher: SYSROOT/python runs the aarch64 interpreter ----
write_launcher() {
  local qemu_cpu; qemu_cpu=$([ "$BOARD" = pi5 ] && echo cortex-a76 || echo cortex-a72)
  cat > "$SYSROOT/python" <<EOF
#!/usr/bin/env bash
# aarch64 CPython $PYVER ($SUITE arm64) under qemu-user, emulating a $BOARD CPU ($qemu_cpu).
# QEMU_CPU=$qemu_cpu: qemu's default "max" CPU has SME, which no Raspberry Pi has; litert's
# XNNPACK picks SME int8 kernels there and gives different results under qemu 7.2.
root="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
# PYTHONSAFEPATH: never import edgemri from a source checkout in the working directory, only the wheel.
export QEMU_CPU="\${QEMU_CPU:-$qemu_cpu}" PYTHONPATH="\$root/site-packages" PYTHONNOUSERSITE=1 PYTHONSAFEPATH=1
unset PYTHONHOME PYTHONDONTWRITEBYTECODE  # cached .pyc files save most of the start-up time under qemu
exec "\${QEMU:-qemu-aarch64-static}" -L "\$root" "\$root/usr/bin/python$PYVER" "\$@"
EOF
  chmod +x "$SYSROOT/python"
}

# ---- 5. smoke test: the interpreter starts and imports the runtime (also caches their .pyc) ----
smoke_test() {
  if ! command -v "${QEMU:-qemu-aarch64-static}" >/dev/null; then
    log "warning: qemu-aarch64-static not found (apt-get install qemu-user-static): sysroot built, not run"
    return
  fi
  (cd "$SYSROOT" && ./python -c "import platform, edgemri.cli, edgemri.runtime.predictor, ai_edge_litert.interpreter, numpy, PIL.Image; assert platform.machine() == 'aarch64', platform.machine()") \
    || { echo "error: the aarch64 python in $SYSROOT cannot import the runtime (see above)" >&2; exit 1; }
}

setup_apt
download_debs
extract_rootfs
install_wheels
write_cpuinfo
write_launcher
smoke_test
log "ready: $SYSROOT/python -m edgemri.cli predict MODEL IMAGE --json"
echo "$SYSROOT"
