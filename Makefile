# The two commands a newcomer needs:  `make run`  and  `make test`.
# Both create .venv and install the pinned dependencies (requirements.lock) on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=23"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
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

## test: the whole suite (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set)
test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m config.secret_key .env
	$(PY) bench/ledger.py
	$(PY) bench/updates.py
	$(PY) bench/inflight.py

## lock: re-pin requirements.lock from pyproject.toml's dependencies (run after changing them)
lock: install
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > .lock-input.txt
	$(PY) -m pip install --quiet -r .lock-input.txt && rm .lock-input.txt
	$(PY) -m pip freeze > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
