# Entry points. `make test` is the command CI runs (.ci/run).
PY := .venv/bin/python

.PHONY: install test main lint

install:
	bash tools/install.sh

# pytest exits 5 when it collects no tests; make treats any non-zero exit as a failure.
test: install
	$(PY) -m pytest -q tests

main: install
	bash tools/main_job.sh

# flake8 is not part of the pinned stack; without it only a syntax check runs.
lint:
	@if $(PY) -c 'import flake8' 2>/dev/null; then $(PY) -m flake8 clustseg tools tests demo; \
	else echo '[lint] flake8 not installed: byte-compiling only'; \
	$(PY) -m compileall -q clustseg tools tests demo; fi
