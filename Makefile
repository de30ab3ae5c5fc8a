# Two entry points for newcomers; scripts/install.sh does the installing.
.PHONY: install install-dev serve test test-postgres lint bench-smoke

install:
	bash scripts/install.sh

install-dev:
	bash scripts/install.sh --dev

# make serve PORT=8611 HOST=0.0.0.0 (links in mails follow them unless BROADSHEET_BASE_URL is
# set); without them, the settings' host and port (127.0.0.1:8000 unless .env says otherwise)
serve: install
	.venv/bin/broadsheet serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

test: install-dev
	.venv/bin/pytest

# every test again on a throwaway PostgreSQL with pgvector that the tests start themselves
test-postgres: install-dev
	BROADSHEET_TEST_ENGINE=postgres .venv/bin/pytest

lint: install-dev
	.venv/bin/ruff check src tests bench

bench-smoke: install-dev
	bash bench/smoke.sh
