#!/usr/bin/env bash
# Install heartsong on Raspberry Pi OS (bookworm) as a systemd service, in one command.
#
#   sudo tools/install-pi.sh              install or update (idempotent: run it again any time)
#   sudo tools/install-pi.sh --uninstall  remove the service, venv and user (keeps config/data)
#   sudo tools/install-pi.sh --uninstall --purge   ... and the config, data and cache too
#   tools/install-pi.sh --dry-run [...]   print every step and command; change nothing
#
# Steps: apt packages -> groups and the system user -> code and venv in /opt/heartsong ->
# config in /etc/heartsong (never overwritten) -> numba cache warmed as the service user
# -> boot config (I2C, I2S) and ALSA -> systemd unit installed and enabled.
set -euo pipefail

readonly APP=heartsong
readonly PREFIX=/opt/heartsong
readonly VENV="$PREFIX/venv"
readonly SRC="$PREFIX/src"
readonly CONF_DIR=/etc/heartsong
readonly STATE_DIR=/var/lib/heartsong
readonly CACHE_DIR=/var/cache/heartsong
readonly NUMBA_DIR="$CACHE_DIR/numba"
readonly UNIT_DST=/etc/systemd/system/heartsong.service
readonly ASOUND_DST=/etc/asound.conf
readonly POLKIT_DST=/etc/polkit-1/rules.d/50-heartsong.rules
readonly GROUPS_WANTED=(i2c gpio audio bluetooth)
readonly APT_PACKAGES=(python3 python3-venv python3-dev gcc libc6-dev portaudio19-dev
  libportaudio2 alsa-utils i2c-tools bluez rsync)
readonly BOOT_MARK_BEGIN="# >>> heartsong (tools/install-pi.sh) >>>"
readonly BOOT_MARK_END="# <<< heartsong <<<"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO
DRY_RUN=0
UNINSTALL=0
PURGE=0
STEP=0

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-pi.sh: unknown option: $arg (try --help)" >&2; exit 2 ;;
  esac
done

step() {
  STEP=$((STEP + 1))
  printf '==> step %d: %s\n' "$STEP" "$*"
}

# Run a command, or print it in a dry run. Every change goes through here.
run() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    +'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

note() {
  printf '    %s\n' "$*"
}

# Write stdin to a file (through run's dry-run rule: the dry run prints the target only).
write_file() {
  local dst=$1 mode=$2
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '    + write %s (mode %s)\n' "$dst" "$mode"
    cat >/dev/null
  else
    install -m "$mode" /dev/stdin "$dst"
  fi
}

require_root() {
  if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install-pi.sh: run as root (sudo $0 $*), or with --dry-run to see the steps" >&2
    exit 1
  fi
}

boot_config() {
  local f
  for f in /boot/firmware/config.txt /boot/config.txt; do
    if [ -f "$f" ]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  printf '%s\n' /boot/firmware/config.txt
}

# -------------------------------------------------------------------------- install steps

install_packages() {
  step "apt packages: ${APT_PACKAGES[*]}"
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    note "all installed"
    return 0
  fi
  run env DEBIAN_FRONTEND=noninteractive apt-get update -q
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

create_user() {
  step "groups ${GROUPS_WANTED[*]} and the system user $APP"
  local g
  for g in "${GROUPS_WANTED[@]}"; do
    if getent group "$g" >/dev/null; then
      note "group $g exists"
    else
      run groupadd --system "$g"
    fi
  done
  if id -u "$APP" >/dev/null 2>&1; then
    note "user $APP exists"
    run usermod --append --groups "$(IFS=,; echo "${GROUPS_WANTED[*]}")" "$APP"
  else
    run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --groups "$(IFS=,; echo "${GROUPS_WANTED[*]}")" "$APP"
  fi
}

install_code() {
  step "code in $SRC and the virtual environment $VENV"
  run install -d -m 0755 "$PREFIX" "$SRC"
  run rsync -a --delete --exclude .git --exclude .venv --exclude '__pycache__' \
    --exclude '*.egg-info' "$REPO/" "$SRC/"
  if [ -x "$VENV/bin/python" ]; then
    note "venv exists"
  else
    run python3 -m venv "$VENV"
  fi
  run "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # Editable, so the package finds the shipped model in $SRC/models.
  run "$VENV/bin/python" -m pip install --quiet -e "$SRC"
  # gpiozero without lgpio falls back to a backend with no PWM: the LEDs, and with them
  # the buttons, would be off. Say so now rather than in the journal at first boot.
  if [ "$DRY_RUN" -eq 0 ] && ! "$VENV/bin/python" -c 'import lgpio' 2>/dev/null; then
    note "warning: lgpio did not install; buttons and LEDs will stay off (see README)"
  fi
}

install_config() {
  step "configuration in $CONF_DIR (an existing config.toml is kept)"
  run install -d -m 0750 -o root -g "$APP" "$CONF_DIR"
  if [ -f "$CONF_DIR/config.toml" ]; then
    note "$CONF_DIR/config.toml exists: kept"
  else
    run install -m 0640 -o root -g "$APP" "$REPO/config/heartsong.example.toml" \
      "$CONF_DIR/config.toml"
  fi
  run install -d -m 0750 -o "$APP" -g "$APP" "$STATE_DIR" "$CACHE_DIR" "$NUMBA_DIR"
}

warm_numba_cache() {
  step "warm the numba cache in $NUMBA_DIR (so the first boot does not compile)"
  run runuser -u "$APP" -- env NUMBA_CACHE_DIR="$NUMBA_DIR" "$VENV/bin/python" -c \
    'from heartsong.config import Config; from heartsong.wiring import make_engine; from heartsong.dsp.pipeline import warm_up; make_engine(Config()).warm_up(); warm_up()'
}

install_boot_config() {
  local cfg
  cfg="$(boot_config)"
  step "boot config $cfg (I2C at 400 kHz, I2S amplifier) and ALSA $ASOUND_DST"
  if [ -f "$cfg" ] && grep -qF "$BOOT_MARK_BEGIN" "$cfg"; then
    note "$cfg already has the heartsong block"
  else
    { printf '\n%s\n' "$BOOT_MARK_BEGIN"; cat "$REPO/hw/config.txt"; printf '%s\n' "$BOOT_MARK_END"; } |
      if [ "$DRY_RUN" -eq 1 ]; then
        printf '    + append hw/config.txt to %s (reboot to apply)\n' "$cfg"
        cat >/dev/null
      else
        cat >>"$cfg"
        note "reboot to apply the boot config"
      fi
  fi
  if [ -f "$ASOUND_DST" ]; then
    note "$ASOUND_DST exists: kept"
  else
    write_file "$ASOUND_DST" 0644 <"$REPO/hw/asound.conf"
  fi
}

install_power_rule() {
  step "polkit rule $POLKIT_DST (the held play button may power the device off)"
  write_file "$POLKIT_DST" 0644 <"$REPO/hw/polkit-heartsong.rules"
}

install_service() {
  step "systemd unit $UNIT_DST, enabled at boot"
  write_file "$UNIT_DST" 0644 <"$REPO/systemd/heartsong.service"
  run systemctl daemon-reload
  run systemctl enable heartsong.service
  if systemctl is-active --quiet heartsong.service 2>/dev/null; then
    run systemctl restart heartsong.service
  else
    note "start it now with: sudo systemctl start heartsong (or reboot)"
  fi
}

# -------------------------------------------------------------------------- uninstall steps

uninstall() {
  step "stop and disable the service; remove $UNIT_DST"
  if [ -f "$UNIT_DST" ] || [ "$DRY_RUN" -eq 1 ]; then
    run systemctl disable --now heartsong.service
    run rm -f "$UNIT_DST" "$POLKIT_DST"
    run systemctl daemon-reload
  else
    note "no unit installed"
  fi
  step "remove $PREFIX (code and venv)"
  run rm -rf "$PREFIX"
  step "remove the heartsong block from the boot config"
  local cfg
  cfg="$(boot_config)"
  if [ -f "$cfg" ] && grep -qF "$BOOT_MARK_BEGIN" "$cfg"; then
    run sed -i "/^$BOOT_MARK_BEGIN\$/,/^$BOOT_MARK_END\$/d" "$cfg"
  else
    note "no heartsong block in $cfg"
  fi
  step "remove the system user $APP"
  if id -u "$APP" >/dev/null 2>&1; then
    run userdel "$APP"
  else
    note "no user $APP"
  fi
  step "configuration, data and cache"
  if [ "$PURGE" -eq 1 ]; then
    run rm -rf "$CONF_DIR" "$STATE_DIR" "$CACHE_DIR"
  else
    note "kept $CONF_DIR and $STATE_DIR (sessions); --purge removes them"
  fi
}

check_sources() {
  local f
  for f in systemd/heartsong.service hw/config.txt hw/asound.conf hw/polkit-heartsong.rules \
    config/heartsong.example.toml; do
    if [ ! -f "$REPO/$f" ]; then
      echo "install-pi.sh: $REPO/$f is missing (run from a heartsong checkout)" >&2
      exit 1
    fi
  done
}

main() {
  require_root "$@"
  check_sources
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "install-pi.sh: dry run: nothing is changed"
  fi
  if [ "$UNINSTALL" -eq 1 ]; then
    uninstall
  else
    install_packages
    create_user
    install_code
    install_config
    warm_numba_cache
    install_boot_config
    install_power_rule
    install_service
  fi
  echo "install-pi.sh: done ($STEP steps)"
}

main "$@"
