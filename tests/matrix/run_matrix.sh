#!/usr/bin/env bash
# Configuration matrix: build the pipeline end to end on the real data under changed configurations, so that a
# student's config change cannot break `make all` unnoticed (issue 16 §2).
#
#   tests/matrix/run_matrix.sh [VARIANT ...]     (default: critic window2022 window2012)
#
# Variants (each one edit of one config line, as a student would make it):
#   critic      configs/index.yaml  default_method: minmax_critic_wsum      (CRITIC weights as the default index)
#   equal       configs/index.yaml  default_method: minmax_equal_wsum
#   pca         configs/index.yaml  default_method: minmax_pca_wsum
#   window2022  configs/panel.yaml  window: {first_year: 2015, last_year: 2022}   (the one window setting)
#   window2012  configs/panel.yaml  window: {first_year: 2012, last_year: 2021}
#
# Each variant runs in a fresh copy of the working tree (tracked and untracked, not ignored, files; data/processed
# and figures start empty) in a temporary folder, sharing this checkout's .venv, and runs the data stages, every
# estimate, the tables, the figures and the notebooks (`make data estimates tables figures notebooks`; the
# multiverse, about half of a full build, is left out). A variant passes when make exits 0 and every table, figure
# and notebook the Makefile lists exists. Nothing in this checkout is written. MATRIX_KEEP=1 keeps the copies;
# MATRIX_TARGETS overrides the make targets; JOBS is passed to make.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(critic window2022 window2012)
TARGETS="${MATRIX_TARGETS:-data estimates tables figures notebooks}"
test -x "$ROOT/.venv/bin/python" || { echo "run_matrix: $ROOT/.venv missing (make env first)" >&2; exit 2; }

# edit FILE PYTHON-REGEX REPLACEMENT: replace exactly one line of a config (fails if the pattern is not found once)
edit() {
  "$ROOT/.venv/bin/python" - "$1" "$2" "$3" <<'PY'
import re, sys
path, pattern, repl = sys.argv[1:]
text = open(path, encoding="utf-8").read()
new, n = re.subn(pattern, repl, text, flags=re.M)
if n != 1:
    sys.exit(f"run_matrix: pattern {pattern!r} found {n} times in {path} (expected once)")
open(path, "w", encoding="utf-8").write(new)
PY
}

apply_variant() {
  case "$1" in
    critic)     edit configs/index.yaml '^default_method: .*$' 'default_method: minmax_critic_wsum' ;;
    equal)      edit configs/index.yaml '^default_method: .*$' 'default_method: minmax_equal_wsum' ;;
    pca)        edit configs/index.yaml '^default_method: .*$' 'default_method: minmax_pca_wsum' ;;
    window2022) edit configs/panel.yaml '^window: .*$' 'window: {first_year: 2015, last_year: 2022}' ;;
    window2012) edit configs/panel.yaml '^window: .*$' 'window: {first_year: 2012, last_year: 2021}' ;;
    *) echo "run_matrix: unknown variant $1 (critic, equal, pca, window2022, window2012)" >&2; return 2 ;;
  esac
}

failed=()
for variant in "${VARIANTS[@]}"; do
  work="$(mktemp -d "${TMPDIR:-/tmp}/matrix-$variant.XXXXXX")"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | \
     xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' | tar --null -T - -cf -) | tar -xf - -C "$work"
  ln -s "$ROOT/.venv" "$work/.venv"
  rm -rf "$work/data/processed" "$work/notebooks/"*.ipynb "$work/notebooks/"*.html
  mkdir -p "$work/data/processed"
  start=$SECONDS
  status=0
  (
    cd "$work"
    apply_variant "$variant"
    # PYTHONPATH: the copy's `analysis` package, not the editable install of this checkout (notebook kernels too);
    # -o: the shared environment is installed, never reinstall it from the copy.
    export PYTHONPATH="$work"
    make --no-print-directory -o .venv/.installed-stamp JOBS="${JOBS:-2}" $TARGETS
    missing=$(make --no-print-directory -o .venv/.installed-stamp -s -p -n $TARGETS 2>/dev/null | \
      sed -n -E 's/^(TABLES_OUT|FIGURE_OUTPUTS|NOTEBOOKS) :?= (.*)$/\2/p' | tr ' ' '\n' | grep -v '^$' | \
      while read -r f; do test -e "$f" || echo "$f"; done)
    if [ -n "$missing" ]; then echo "run_matrix: $variant: not built: $missing" >&2; exit 1; fi
  ) > "$work/matrix.log" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    echo "matrix $variant: ok ($((SECONDS - start)) s)"
    [ "${MATRIX_KEEP:-0}" = 1 ] || rm -rf "$work"
  else
    echo "matrix $variant: FAILED ($((SECONDS - start)) s); last lines of $work/matrix.log:" >&2
    tail -n 40 "$work/matrix.log" >&2
    failed+=("$variant")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "matrix failed: ${failed[*]}" >&2; exit 1; }
