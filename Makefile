# The two commands a newcomer needs:  `make run`  and  `make test`.
# Both create .venv and install the development lock (requirements/dev.txt: pinned, with hashes) on
# first use. The Docker image installs only the production lock (requirements/prod.txt).

# The Python version lives in .python-version (the Dockerfile's default, `make image`, the venv).
PYTHON_VERSION := $(shell cat .python-version)
PYTHON ?= $(shell command -v python$(PYTHON_VERSION) 2>/dev/null || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements/dev.txt
IMAGE ?= genstudio-bot

.PHONY: install run test test-slow lint messages bench lock image clean

$(STAMP): $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	@touch $(STAMP)

install: $(STAMP)

## run: a SECRET_KEY in .env (generated once), migrate, load the initial data, create the admin login,
## start web (+ bot and worker). PORT=8001 make run picks another web port.
run: install
	$(PY) -m config.secret_key .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py runstack

## test: the suite without the slowest tests (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set)
test: install
	$(PY) -m pytest -m "not slow"

## test-slow: the slowest tests, marked `slow` (processes started, a real worker killed, browsers); CI runs both
test-slow: install
	$(PY) -m pytest -m slow

lint: install
	$(VENV)/bin/ruff check .

## messages: the admin's Russian catalogue (botapp/locale/ru): collect the project's own strings (botapp and
## config: not the venv, the sandbox, the tests, the benchmarks; the bot's texts live in botapp/locales/*.toml),
## then, after translating the new msgids in django.po, compile the .mo (committed: CI needs no msgfmt).
MAKEMESSAGES_IGNORE = --ignore=.venv --ignore=sandbox --ignore=tests --ignore=bench --ignore=docs \
	--ignore=requirements --ignore=staticfiles --ignore=media
messages: install
	DEBUG=true $(PY) manage.py makemessages -l ru --no-obsolete $(MAKEMESSAGES_IGNORE)
	DEBUG=true $(PY) manage.py compilemessages -l ru --ignore=.venv
	@$(PY) -c "import sys; sys.path.insert(0, '.'); from tests.pofile import parse; \
	left = [str(e) for e in parse('botapp/locale/ru/LC_MESSAGES/django.po') if not e.translated]; \
	print(*(['Untranslated or fuzzy (translate them in botapp/locale/ru/LC_MESSAGES/django.po, then make messages):'] + left if left else ['All translated.']), sep='\n  ')"

bench: install
	$(PY) -m config.secret_key .env
	$(PY) bench/ledger.py
	$(PY) bench/updates.py
	$(PY) bench/inflight.py
	$(PY) bench/inflight.py --model omni --no-naive
	$(PY) bench/broadcast.py
	$(PY) bench/dashboard.py

## lock: re-pin both locks from pyproject.toml (run after changing its dependencies), with pip-tools:
## requirements/prod.txt from [project].dependencies, requirements/dev.txt from those plus the `dev`
## extra, constrained to the production pins. Existing pins are kept unless a change needs another;
## `make lock UPGRADE=1` moves every pin to the newest allowed release.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes \
	--allow-unsafe --no-strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)
lock: install
	$(PIP_COMPILE) --output-file requirements/prod.txt pyproject.toml
	$(PIP_COMPILE) --extra dev --constraint requirements/prod.txt --output-file requirements/dev.txt pyproject.toml

## image: the production image (Docker), on the Python version of .python-version
image:
	docker build --build-arg PYTHON_VERSION=$(PYTHON_VERSION) -t $(IMAGE) .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
