# `make demo`: the embedded default job.  `make test`: the whole test suite.  Both set up .venv first, once.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := ccol_policy ccol_teleop ccol_sim ccol_bringup
MSGS := install/ccol_msgs/.built

.PHONY: demo test lint bench clean-venv

$(STAMP): requirements.txt ccol_policy/setup.py ccol_teleop/setup.py ccol_sim/setup.py ccol_bringup/setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps gymnasium-robotics==1.4.2  # the Panda MJCF + meshes of ccol_sim only
	$(BIN)/pip install --quiet --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

# ccol_msgs built with the wheels' rosidl tool chain; without cmake/cc the nodes use standard types only.
$(MSGS): $(STAMP) ccol_msgs/CMakeLists.txt ccol_msgs/package.xml $(wildcard ccol_msgs/msg/*.msg) scripts/build_ccol_msgs.sh
	scripts/build_ccol_msgs.sh && touch $(MSGS) || echo "WARNING: ccol_msgs not built (see above); its tests will skip"

demo: $(STAMP)
	$(BIN)/ccol demo --out runs/demo

test: $(STAMP) $(MSGS)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_policy.py

clean-venv:
	rm -rf $(VENV)
