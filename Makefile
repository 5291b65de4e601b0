# The lab's commands. `make lab` and `make test` are the two a fresh machine needs.
VENV := .venv
BIN := $(VENV)/bin
LAB := $(BIN)/socklab

.PHONY: setup venv lab up down status test check lint typecheck unit docker-tests cluster-tests installed-tests format

setup:            ## install what is missing (Docker, Compose v2, debootstrap, .venv)
	@./scripts/setup

lab: setup        ## set up, start the lab, and show every service answering
	$(LAB) up
	$(LAB) send tcp "hello, tcp-shout"
	$(LAB) send udp "udp works tho" --from client
	$(LAB) send http GET /
	$(LAB) send http PUT /kv/greeting --data "hello, db" --from client
	$(LAB) send db GET greeting
	@echo
	@echo "Watch it in a browser: .venv/bin/socklab web   (it prints the address to open)"

up: setup
	$(LAB) up

down:             ## remove every container, network and volume of the lab
	$(LAB) down

status:
	$(LAB) status

test: setup       ## every check: lint, format, types, and all five test tiers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

check: test

venv:             ## only Python and the .venv (no Docker)
	@./scripts/setup --venv

unit: venv        ## the fast tiers only (pure and loopback), no Docker
	$(BIN)/pytest -m "pure or local"

docker-tests: setup
	$(BIN)/pytest -m docker

cluster-tests: setup  ## one lab across three Docker Engines made on this machine
	$(BIN)/pytest -m cluster

installed-tests: setup  ## the built wheel, as a user who is not root, and from a container
	$(BIN)/pytest -m installed

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
