#!/usr/bin/env bash
# Install the GitHub Actions runner the way gha-scalesets starts it: into the ECS runner image
# (images/runner/Dockerfile) or onto an EC2 runner AMI (docs/releases.md, "An EC2 runner AMI").
#
#   install-runner.sh [--from URL|DIR] [--version V --sha256 HEX] [--arch x64|arm64]
#                     [--dir DIR] [--user NAME] [--uid N]
#
# As root, on Debian/Ubuntu (apt) or Amazon Linux/Fedora (dnf): installs bash, curl, git, jq and
# the AWS CLI (what the runner bootstrap and entrypoint call), creates the user, downloads the
# runner release (or takes it from DIR), checks its SHA-256, unpacks it into DIR owned by the
# user and installs the runner's own dependencies (its bin/installdependencies.sh).
# Defaults: the release pinned in runner.env beside this script, from GitHub, for this machine's
# architecture, into /opt/actions-runner, user "runner" (created with the next free uid).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
from=https://github.com/actions/runner/releases/download
version="" sha256="" arch="" dir=/opt/actions-runner user=runner uid=""

say() { printf 'install-runner: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case $1 in
    --from | --version | --sha256 | --arch | --dir | --user | --uid)
      (($# >= 2)) || die "$1 needs a value"
      declare "${1#--}=$2"
      shift 2
      ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
((EUID == 0)) || die "run it as root (it installs packages and creates the user '$user')"

case ${arch:-$(uname -m)} in
  x64 | amd64 | x86_64) arch=x64 ;;
  arm64 | aarch64) arch=arm64 ;;
  *) die "unsupported architecture '${arch:-$(uname -m)}': the runner ships for x64 and arm64" ;;
esac

# The pinned release, unless --version names another one (which then needs --sha256).
if [[ -f $here/runner.env ]]; then
  # shellcheck source=runner.env
  source "$here/runner.env"
fi
pinned=${ACTIONS_RUNNER_VERSION:-}
if [[ -z $version || $version == "$pinned" ]]; then
  [[ -n $pinned ]] || die "no runner.env beside this script: give --version and --sha256"
  version=$pinned
  pinned_sha256_var=ACTIONS_RUNNER_SHA256_${arch^^}
  sha256=${sha256:-${!pinned_sha256_var}}
fi
[[ -n $sha256 ]] || die "runner $version is not the pinned release: give its --sha256 (from its release page)"

# --- packages --------------------------------------------------------------------------------------
packages=(bash ca-certificates git jq tar gzip)
if command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  packages+=(curl)
  command -v aws >/dev/null || packages+=(awscli)
  say "apt-get install ${packages[*]} ..."
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
elif command -v dnf >/dev/null; then
  # Amazon Linux 2023 has curl (curl-minimal) and the AWS CLI in its AMIs already.
  command -v curl >/dev/null || packages+=(curl)
  command -v aws >/dev/null || packages+=(awscli-2)
  say "dnf install ${packages[*]} ..."
  dnf install -y -q "${packages[@]}"
else
  die "neither apt-get nor dnf found: install ${packages[*]} curl and the AWS CLI yourself"
fi
command -v aws >/dev/null ||
  die "the AWS CLI is not installed and this system's packages do not provide it: install AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html) and run again"

# --- the runner ------------------------------------------------------------------------------------
id -u "$user" >/dev/null 2>&1 || useradd --create-home ${uid:+--uid "$uid"} --shell /bin/bash "$user"
tarball=actions-runner-linux-$arch-$version.tar.gz
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
case $from in
  http://* | https://*)
    say "downloading $from/v$version/$tarball ..."
    curl -fsSL --retry 3 -o "$download/$tarball" "$from/v$version/$tarball"
    ;;
  *)
    [[ -f $from/$tarball ]] || die "$from/$tarball not found (put the release tarball there)"
    cp "$from/$tarball" "$download/$tarball"
    ;;
esac
echo "$sha256  $download/$tarball" | sha256sum --check --quiet ||
  die "$tarball does not have the SHA-256 $sha256: not installed"

mkdir -p "$dir"
tar -xzf "$download/$tarball" -C "$dir"
[[ -x $dir/run.sh && -x $dir/bin/installdependencies.sh ]] ||
  die "$tarball is not an actions runner release (no run.sh or bin/installdependencies.sh)"
say "installing the runner's dependencies (bin/installdependencies.sh) ..."
"$dir/bin/installdependencies.sh" >/dev/null
chown -R "$user:$user" "$dir"
say "actions runner $version ($arch) installed in $dir for user $user"
