# Dual-use technology transfer capability: the whole pipeline.
#   make all    build the environment if missing, then run every stage (no network after the install step)
#   make test   run the tests (builds the environment and the outputs the real-build tests read first)
#   make help   list targets
# Each output has one producer; the producing program is the first prerequisite; outputs are written atomically.

# Grouped targets (`a b &: c`) need GNU make 4.3 or newer; older makes (macOS ships 3.81) misread them silently.
MAKE_MAJOR := $(word 1,$(subst ., ,$(MAKE_VERSION)))
MAKE_MINOR := $(word 2,$(subst ., ,$(MAKE_VERSION)))
ifneq ($(filter 0 1 2 3,$(MAKE_MAJOR))$(filter 4.0 4.1 4.2,$(MAKE_MAJOR).$(MAKE_MINOR)),)
$(error GNU make >= 4.3 is required (this Makefile uses grouped targets), found $(MAKE_VERSION); on macOS: brew install make, then run gmake)
endif

# Variables a user may set (`make help` lists the lines that start with `#>`):
#> JOBS=N                    parallel jobs (default: all cores; JOBS=1 for a serial run)
#> VENV=path                 Python environment to use (default .venv; a conda env: VENV=$CONDA_PREFIX)
#> PYTHON_BOOT=python3.11    interpreter that creates .venv when it is missing
#> UPGRADE=1                 make lock: move every package to the newest version its bounds allow (default: keep)
#> DUALUSE_DASK_SCHEDULER=tcp://host:8786   (environment) run the multiverse on an existing dask scheduler

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := all

# Independent stages run in parallel on all cores (make JOBS=1 for a serial run); logs stay grouped per target.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
# (set by the top-level make only: a sub-make, such as the build run under the lock below, uses its jobserver)
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += --jobs=$(JOBS) --output-sync=target
endif

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed-stamp
export PYTHONHASHSEED := 0
# Cache compiled bytecode (Python's default; some sandboxes and CI images turn it off): every stage is a fresh Python
# process, and recompiling the analysis package in each cost about a tenth of a second per process.
export PYTHONDONTWRITEBYTECODE :=
export MPLBACKEND := Agg

P := data/processed
RAW_FILES := $(shell find data/raw -type f 2>/dev/null | LC_ALL=C sort)
PKG := analysis/__init__.py analysis/paths.py analysis/io.py analysis/provinces.py analysis/fingerprint.py analysis/window.py

# ---- one build at a time ------------------------------------------------------------------------------------------
# Two makes in one tree would run the same stages at once (each file is renamed into place atomically, but one build
# can read a file while the other replaces it, and both rewrite the estimate stamp). So a make that writes outputs
# first takes an exclusive lock on $(BUILD_LOCK) (flock, released when the build ends, also when it is killed) and
# runs itself again under it; a second make exits 2 at once: "another build holds data/processed/.lock (pid N)".
# The inner make and everything it starts inherit DUALUSE_BUILD_LOCK, so recursive makes and the makes that the
# tests run under `make test` do not wait for their own parent. Goals that write no pipeline output (help, verify-results,
# clean-env, lock) take no lock, nor do dry runs (make -n, make -q); without flock (macOS) builds are not locked.
# (GNU make passes neither -o nor -W to a sub-make: under the lock, `make -o FILE goal` remakes FILE if it is stale.)
BUILD_LOCK ?= $(P)/.lock
LOCK_GOALS := $(strip $(if $(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS))),,\
	$(filter-out help verify-results clean-env lock,$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL)))))
ifneq ($(if $(DUALUSE_BUILD_LOCK),,$(LOCK_GOALS)),)
ifneq ($(shell command -v flock),)
LOCK_WRAP := 1
endif
endif

ifeq ($(LOCK_WRAP),1)
.PHONY: $(LOCK_GOALS)
# the first goal runs the whole build under the lock; the other goals wait for it
$(firstword $(LOCK_GOALS)):
	@mkdir -p "$(dir $(BUILD_LOCK))"; exec 9>>"$(BUILD_LOCK)"; \
	if ! flock -n 9; then \
		echo "error: another build holds $(BUILD_LOCK) (pid $$(cat "$(BUILD_LOCK)" 2>/dev/null || echo unknown)); wait for it to finish, or stop it" >&2; \
		exit 2; \
	fi; \
	echo $$$$ > "$(BUILD_LOCK)"; \
	DUALUSE_BUILD_LOCK=$$$$ $(MAKE) --no-print-directory $(MAKECMDGOALS)
$(wordlist 2,$(words $(LOCK_GOALS)),$(LOCK_GOALS)): $(firstword $(LOCK_GOALS))
	@:
else

FORCE:
.PHONY: FORCE all env data panel indices shocks estimates tables figures notebooks multiverse results verify-results \
	update-results test bench clean clean-env help register

all: env data estimates tables figures notebooks multiverse results ## everything: environment, data, models, exhibits, notebooks, multiverse, RESULTS.md

help: ## list targets and the variables a user may set
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'
	@printf '\nVariables (make VAR=value):\n'
	@sed -n 's/^#> /  /p' $(MAKEFILE_LIST)

# ---- environment (the only steps that touch the network) ------------------------------------------------------
# pyproject.toml declares the direct dependencies with bounds ([project] dependencies; extras test, bench);
# requirements.txt is the lock pip-compile makes from it (every package, exact pins), and environment.yml (conda)
# is generated from the lock. `make env` installs the lock; `make lock` regenerates lock and conda file.
env: $(ENV_STAMP) ## create .venv from the lock requirements.txt (exact pins) if missing

$(ENV_STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 required, found {sys.version.split()[0]}"'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# pip-compile keeps the versions already in requirements.txt (numbers must not move with a re-lock) and only adds or
# drops what pyproject.toml changed; UPGRADE=1 moves every package to the newest version its bounds allow. pip-tools
# runs from a throwaway venv, so it is not part of the analysis environment.
PIP_TOOLS := pip-tools==7.6.2
LOCK_FLAGS := --quiet --extra test --extra bench --strip-extras --annotation-style line \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host
.PHONY: lock
lock: ## regenerate the lock requirements.txt from pyproject.toml (pip-compile), then environment.yml from the lock
	tools=$$(mktemp -d) && trap 'rm -rf "$$tools"' EXIT && \
	$(PYTHON_BOOT) -m venv "$$tools" && \
	"$$tools/bin/python" -m pip install --quiet --disable-pip-version-check $(PIP_TOOLS) && \
	CUSTOM_COMPILE_COMMAND="make lock" "$$tools/bin/pip-compile" $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) \
		-o requirements.txt pyproject.toml
	$(PYTHON_BOOT) -m analysis.envfile --lock requirements.txt --out environment.yml

# ---- 0. raw data: verify against the manifest ------------------------------------------------------------------
$(P)/.raw_verified: analysis/manifest.py configs/data_sources.yaml $(RAW_FILES) $(PKG) | $(ENV_STAMP)
	$(PY) -m analysis.manifest verify --stamp $@

# FILE, ORIGIN and LICENCE reach the program through the environment, unexpanded ($(value ...)), and never appear in
# a recipe's text: quotes, backticks, `$(shell ...)` or `$5` in them are recorded verbatim and run nothing. They are
# not exported by make itself (exporting would expand them).
unexport FILE ORIGIN LICENCE
register: export DUALUSE_REGISTER_FILE = $(value FILE)
register: export DUALUSE_REGISTER_ORIGIN = $(value ORIGIN)
register: export DUALUSE_REGISTER_LICENCE = $(value LICENCE)
register: | $(ENV_STAMP) ## record a replacement raw file: make register FILE=data/raw/... ORIGIN="..." [LICENCE="..."]
	$(PY) -m analysis.manifest register

# ---- 1. clean: raw → panel ------------------------------------------------------------------------------------
PANEL_OUT := $(P)/panel.parquet $(P)/panel.csv $(P)/codebook.csv $(P)/cleaning_log.csv $(P)/provinces.csv $(P)/defence_firms_crosscheck.csv
panel: $(PANEL_OUT) ## cleaned province × year panel, codebook, cleaning log, province table

$(PANEL_OUT) &: analysis/clean/__main__.py analysis/clean/__init__.py analysis/clean/yearbook.py analysis/clean/nbs.py \
		analysis/clean/panel.py analysis/clean/defence_firms.py configs/panel.yaml $(P)/.raw_verified $(RAW_FILES) $(PKG)
	$(PY) -m analysis.clean --config configs/panel.yaml --out-dir $(P)

# ---- 2. indices: panel → dual-use transfer-capability indices, sensitivity, claims check ------------------------
INDEX_OUT := $(P)/indices.parquet $(P)/index_weights.csv $(P)/index_sensitivity.csv $(P)/index_sensitivity.md \
	$(P)/claims_check.csv $(P)/claims_check.md $(P)/index_validity.csv $(P)/index_validity.md
indices: $(INDEX_OUT) ## indices by province × year × method, weights, sensitivity, claims check

$(INDEX_OUT) &: analysis/index/__main__.py $(wildcard analysis/index/*.py) configs/index.yaml configs/panel.yaml \
		$(P)/panel.parquet $(PKG)
	$(PY) -m analysis.index --panel $(P)/panel.parquet --config configs/index.yaml --out-dir $(P) --no-progress

# ---- 3. sanction shocks: event dates, pre-shock exposure, Entity List (lower bounds) ----------------------------
SHOCKS_OUT := $(P)/shocks.parquet $(P)/shocks_codebook.csv $(P)/shocks_summary.md $(P)/entity_list_geocoded.csv \
	$(P)/entity_list_unresolved.csv
shocks: $(SHOCKS_OUT) ## sanction shocks by province × year, exposure codebook, Entity List geocoding report

$(SHOCKS_OUT) &: analysis/shocks/__main__.py $(wildcard analysis/shocks/*.py) configs/shocks.yaml configs/panel.yaml \
		configs/entity_locations.yaml $(P)/panel.parquet $(P)/provinces.csv $(P)/.raw_verified $(PKG)
	$(PY) -m analysis.shocks --panel $(P)/panel.parquet --config configs/shocks.yaml --provinces $(P)/provinces.csv --out-dir $(P)

# ---- 4. analysis panel: panel ⋈ default index ⋈ shocks over the study window (configs/panel.yaml `window`) -------
# with its codebook (every column: label, unit, producing stage, source), built from the panel and shocks codebooks
$(P)/analysis_panel.parquet $(P)/analysis_panel_codebook.csv &: analysis/analysis_panel.py analysis/index/growth.py \
		configs/analysis_panel.yaml configs/index.yaml configs/panel.yaml $(P)/panel.parquet $(P)/indices.parquet \
		$(P)/shocks.parquet $(P)/codebook.csv $(P)/shocks_codebook.csv $(PKG)
	$(PY) -m analysis.analysis_panel --out $(P)/analysis_panel.parquet --codebook $(P)/analysis_panel_codebook.csv

# ---- 4b. robustness: the same stages on the window extended to 2022 (tab07 column f, spec robust_window2022_*) --
# The index is rebuilt on 2015-2022 (its pooled min-max scale and weights re-estimated), the shocks and the analysis
# panel extended; the exposure base period and event dates are unchanged. Written to their own folder.
W22 := $(P)/window_2015_2022
W22_OUT := $(addprefix $(W22)/,analysis_panel.parquet analysis_panel_codebook.csv $(notdir $(INDEX_OUT) $(SHOCKS_OUT)))
$(W22_OUT) &: analysis/analysis_panel.py analysis/index/__main__.py $(wildcard analysis/index/*.py) \
		analysis/shocks/__main__.py $(wildcard analysis/shocks/*.py) configs/analysis_panel.yaml configs/index.yaml \
		configs/shocks.yaml configs/entity_locations.yaml $(P)/panel.parquet $(P)/provinces.csv $(P)/codebook.csv \
		$(P)/.raw_verified $(PKG)
	$(PY) -m analysis.index --panel $(P)/panel.parquet --config configs/index.yaml --out-dir $(W22) --window 2015 2022 --no-progress
	$(PY) -m analysis.shocks --panel $(P)/panel.parquet --config configs/shocks.yaml --provinces $(P)/provinces.csv \
		--out-dir $(W22) --window 2015 2022
	$(PY) -m analysis.analysis_panel --indices $(W22)/indices.parquet --shocks $(W22)/shocks.parquet \
		--shocks-codebook $(W22)/shocks_codebook.csv --out $(W22)/analysis_panel.parquet \
		--codebook $(W22)/analysis_panel_codebook.csv --window 2015 2022

data: panel indices shocks $(P)/analysis_panel.parquet $(P)/analysis_panel_codebook.csv $(W22_OUT) ## all data stages (panel, indices, shocks, analysis panel + codebook; the 2015-2022 build for tab07)

# ---- 5. models: one estimate file (+ JSON sidecar) per spec --------------------------------------------------
# How staleness is decided (one mechanism). Make drives: a target is remade when a prerequisite is newer. Code
# prerequisites are derived, never listed: $(CODE_DEPS), written by `python -m analysis.fingerprint --make-rules`
# and remade when any analysis/ source changes, sets MODEL_SRC and MULTIVERSE_SRC to the files that the estimation
# stage (analysis.estimate) and the multiverse CLI reach through the static import graph (imports anywhere in a
# file, estimator modules the registry names; a function's lazy imports only if something on the path refers to
# it): a new module counts as soon as it is imported, whatever its name; one nothing imports (a table formatter)
# does not. Make only decides that a stage must look; content fingerprints decide what it recomputes. Each estimate
# sidecar carries SHA-256 of {resolved spec (extends chain merged), SHA-256 of its panel and spec files, code
# version = SHA-256 of the bytes of those same derived files + versions of the numerical packages
# (analysis.fingerprint.NUMERICAL_PACKAGES: numpy, pandas, scipy, statsmodels, linearmodels, pyfixest, diff-diff)};
# `estimate --all` re-estimates only the specs whose fingerprint differs (editing a base
# spec reruns the variants that extend it, and nothing else) and leaves the other files and their dates alone, so
# their tables and figures are not redrawn. A multiverse cell's cache key is SHA-256 of {cell definition, inputs'
# SHA-256, code version of the task and grid modules' graph}; its rows are ordered by the definition's hash alone,
# so a code edit does not reorder them. Figures and notebooks never refit: synthetic-control and synthetic-DiD paths
# and weights are estimation outputs (<id>.paths.parquet, <id>.weights.parquet, and for sdid <id>.time_weights.parquet
# beside the estimates). Stamp: the estimate files
# have an empty recipe, so make reads their dates again after the batch and only rewritten files count as changed;
# a deleted estimate file (seen when make reads this Makefile) forces the batch. The stamp takes the date of its
# newest input (not "now"), so after a full build every estimate file is newer than it; after an edit, the files of
# unchanged specs are older, and `make -n` lists their tables and figures although `make` redraws nothing.
CODE_DEPS := $(P)/code_deps.mk
ifeq ($(filter help clean clean-env env lock,$(MAKECMDGOALS)),)
-include $(CODE_DEPS)
endif
$(CODE_DEPS): analysis/fingerprint.py $(wildcard analysis/*.py analysis/*/*.py) | $(ENV_STAMP)
	$(PY) -m analysis.fingerprint --make-rules $@ MODEL_SRC=analysis.estimate MULTIVERSE_SRC=analysis.multiverse.__main__
SPECS := $(sort $(wildcard configs/specs/*.yaml))
ESTIMATES := $(patsubst configs/specs/%.yaml,$(P)/estimates/%.parquet,$(SPECS))
ESTIMATE_FILES := $(ESTIMATES) $(ESTIMATES:.parquet=.json)
ESTIMATES_STAMP := $(P)/estimates/.up-to-date
estimates: $(ESTIMATES) ## every model in configs/specs (one estimate file per spec)

$(ESTIMATES_STAMP): analysis/estimate.py $(SPECS) $(P)/analysis_panel.parquet $(W22)/analysis_panel.parquet $(MODEL_SRC) \
		$(if $(filter-out $(wildcard $(ESTIMATE_FILES)),$(ESTIMATE_FILES)),FORCE)
	$(PY) -m analysis.estimate --all configs/specs --out-dir $(P)/estimates --no-progress
	@touch -r "$$(ls -t $(filter-out FORCE,$^) | head -n 1)" $@

$(ESTIMATES): $(ESTIMATES_STAMP) ;

# ---- 6. tables: built only from estimate files ----------------------------------------------------------------
# The tables are declared in configs/tables.yaml (one entry per table, `  tabNN_name:` at two spaces' indent).
TABLE_NAMES := $(shell sed -n -E 's/^  (tab[0-9][0-9]_[a-z0-9_]+):.*$$/\1/p' configs/tables.yaml)
TABLES_OUT := $(foreach t,$(TABLE_NAMES),figures/$(t).tex figures/$(t).md)
# The table code: layout (tables.py) and its definitions, labels, cells and notes (table_*.py).
TABLE_SRC := $(wildcard analysis/models/table*.py)
POWER_OUT := $(P)/power.csv figures/tab09_power.tex figures/tab09_power.md
tables: $(TABLES_OUT) $(POWER_OUT) ## regression tables and the power/equivalence table (LaTeX + Markdown)

$(TABLES_OUT) &: analysis/tables.py $(TABLE_SRC) configs/tables.yaml $(ESTIMATES) $(PKG)
	$(PY) -m analysis.tables --estimates-dir $(P)/estimates --out-dir figures

# What the data can rule out (MDE, 95% bounds, equivalence tests) for the headline specs listed in configs/power.yaml;
# every estimate file is a prerequisite (the list lives in the config), the panel gives the smallest effects of interest.
$(POWER_OUT) &: analysis/power.py configs/power.yaml $(TABLE_SRC) configs/tables.yaml analysis/models/distributions.py \
		$(ESTIMATES) $(P)/analysis_panel.parquet $(PKG)
	$(PY) -m analysis.power --config configs/power.yaml --estimates-dir $(P)/estimates --panel $(P)/analysis_panel.parquet \
		--out-dir $(P) --figures-dir figures

# ---- 7. figures (and the descriptive table) listed in configs/exhibits.yaml; one rule per set of inputs -------
# The rules (outputs and exact inputs; exhibits with identical inputs share one) are generated from configs/exhibits.yaml.
FIG_SRC := $(wildcard analysis/figures/*.py) $(PKG)
ifeq ($(filter help clean clean-env env lock,$(MAKECMDGOALS)),)
-include $(P)/exhibits.mk
endif

figures: $(FIGURE_OUTPUTS) ## figures by military region, maps, event studies, synthetic control (configs/exhibits.yaml)

$(P)/exhibits.mk: analysis/figures/__main__.py analysis/figures/exhibits.py configs/exhibits.yaml | $(ENV_STAMP)
	$(PY) -m analysis.figures --exhibits configs/exhibits.yaml --out-dir figures --make-rules $@

# ---- 8. notebooks for reviewers: jupytext sources executed top to bottom (outputs not committed) --------------
NOTEBOOK_SRC := $(sort $(wildcard notebooks/[0-9]*.py))
NOTEBOOKS := $(NOTEBOOK_SRC:.py=.ipynb)
notebooks: $(NOTEBOOKS) ## execute the reviewer notebooks into .ipynb and .html

notebooks/%.ipynb notebooks/%.html: notebooks/%.py analysis/notebooks.py $(FIG_SRC) $(PANEL_OUT) $(INDEX_OUT) \
		$(SHOCKS_OUT) $(P)/analysis_panel.parquet
	$(PY) -m analysis.notebooks --in $< --out notebooks/$*.ipynb --html notebooks/$*.html

# the notebooks that read estimate files (05: only the case-study specs, whose synthetic paths and weights are
# stored beside the estimates); 07 re-reads the raw yearbook cells and the configs it traces
notebooks/04_did_results.ipynb: $(ESTIMATES)
notebooks/05_case_studies_shaanxi_guangdong.ipynb: $(filter $(P)/estimates/synth_% $(P)/estimates/sdid_%,$(ESTIMATES))
notebooks/07_trace_headline_number.ipynb: $(wildcard data/raw/yearbook-sci-tech/*.rda) configs/panel.yaml configs/index.yaml

# ---- 9. multiverse: every index construction × treatment × estimator × controls × sample, on dask.distributed --
# LocalCluster by default; an existing scheduler with DUALUSE_DASK_SCHEDULER=tcp://host:8786 (no code change).
# Each specification is cached by a hash of its definition, inputs and code, so a rerun computes only what changed.
# With `inference:` in the configuration the same run adds the specification-curve permutation inference
# (multiverse_inference.json and the envelope panel of Figure 12); cached cells make a change of its settings cheap.
MULTIVERSE_OUT := $(P)/multiverse_results.parquet $(P)/multiverse_results.csv $(P)/multiverse_summary.json \
	$(P)/multiverse_inference.json figures/fig12_specification_curve.pdf figures/fig12_specification_curve.png
multiverse: $(MULTIVERSE_OUT) ## specification curve over the multiverse (configs/multiverse.yaml)

$(MULTIVERSE_OUT) &: analysis/multiverse/__main__.py $(MULTIVERSE_SRC) configs/multiverse.yaml configs/index.yaml \
		$(P)/panel.parquet $(P)/shocks.parquet $(P)/analysis_panel.parquet
	$(PY) -m analysis.multiverse --config configs/multiverse.yaml --out-dir $(P) --figure-dir figures --no-progress

# ---- 10. reference results: RESULTS.md (every headline number) and the check of a build against results/ --------
RESULTS_OUT := $(P)/RESULTS.md
results: $(RESULTS_OUT) ## RESULTS.md: every headline number, read from the processed outputs

$(RESULTS_OUT): analysis/results.py analysis/index/validity.py configs/index.yaml $(P)/claims_check.csv \
		$(P)/index_validity.csv $(P)/indices.parquet $(P)/cleaning_log.csv $(POWER_OUT) $(ESTIMATES) $(MULTIVERSE_OUT) \
		$(wildcard $(P)/multiverse_inference.json) $(PKG)
	$(PY) -m analysis.results write --out $@

# Rebuilds nothing: compares data/processed/ and figures/ with results/reference_sha256.txt and results/RESULTS.md.
verify-results: ## compare the current outputs with the committed references in results/ (rebuilds nothing)
	$(PY) -m analysis.results verify

# After an intended change: build everything, then refresh the references (commit results/ afterwards).
update-results: data estimates tables figures multiverse results ## refresh results/RESULTS.md and results/reference_sha256.txt
	cp $(RESULTS_OUT) results/RESULTS.md.tmp && mv results/RESULTS.md.tmp results/RESULTS.md
	$(PY) -m analysis.results hashes --out results/reference_sha256.txt

# ---- tests and benchmarks -------------------------------------------------------------------------------------
# every test, those of the real build (marker `build`, deselected by a plain `python -m pytest`) included; a build
# test whose input is missing fails (tests/conftest.py), it is never skipped
test: data estimates tables figures multiverse ## run the test suite (after building the environment and the pipeline's outputs the tests of the real build read)
	$(PY) -m pytest -q -m "build or not build"

bench: data ## speed benchmarks (not part of test); writes benchmarks/results.md
	$(PY) -m benchmarks

clean: ## remove generated outputs (keeps the environment)
	find $(P) -mindepth 1 ! -name .gitkeep ! -name .lock -exec rm -rf {} +
	find figures -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -f notebooks/*.ipynb notebooks/*.html

clean-env: ## remove the virtual environment
	rm -rf $(VENV)

endif # LOCK_WRAP (the build rules above run under the lock; add new rules above this line)
