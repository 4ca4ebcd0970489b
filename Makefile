# Each target sets itself up: a virtual environment in .venv with tinysiam installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DATA_DIR ?= ../shared/data
RESULTS_RUNS := runs/results

.PHONY: demo test test-slow lint gradcheck bench clean results-demo results-omniglot results-faces results-baselines \
	results-digits results-tdnn results-losses results-sick results-omniglot-full results-vinyals results-vinyals-long curves

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[data,plot,test,search]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tinysiam demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# the style gate: ruff's lint rules and import order (pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .

gradcheck: $(STAMP)
	$(BIN)/tinysiam gradcheck

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs

# the benchmarks need the peers: PyTorch and DeZero (see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/tinysiam bench --threads 2 --repeat 7 --warmup 2 --profile --json benchmarks/results/cpu.json \
		--markdown benchmarks/results/cpu.md --results benchmarks/RESULTS.md

# The README's results table, one target per row: each trains and tests from scratch (on 2 CPU cores:
# minutes to half an hour) and writes its record, results/NAME.json (command, commit, seconds, metrics)
results-demo: $(STAMP)
	$(BIN)/tinysiam demo --out $(RESULTS_RUNS)/omniglot-demo --overwrite --record omniglot-demo

results-omniglot: $(STAMP)
	$(BIN)/tinysiam train --recipe omniglot-30min --data-dir $(DATA_DIR) --out $(RESULTS_RUNS)/omniglot-30min \
		--overwrite --record omniglot-30min

# Koch et al.'s protocol on the full set: the omniglot-full recipe from three seeds, each tested once on Lake's
# runs, every epoch's checkpoint scored there too for the curve of accuracy against minutes (1.5 hours)
OMNIGLOT_SEEDS := 0 1 2
results-omniglot-full: $(STAMP)
	for seed in $(OMNIGLOT_SEEDS); do \
		$(BIN)/tinysiam train --recipe omniglot-full --seed $$seed --data-dir $(DATA_DIR) --keep-epochs \
			--out $(RESULTS_RUNS)/omniglot-full-seed$$seed --overwrite --record omniglot-full-seed$$seed || exit 1; \
	done

# Vinyals et al.'s protocol: batch-hard triplets and the Relation Network, each tested once on 1,000 episodes of
# each (way, shot) (75 minutes)
results-vinyals: $(STAMP)
	$(BIN)/tinysiam train --recipe vinyals-triplet --data-dir $(DATA_DIR) --out $(RESULTS_RUNS)/vinyals-triplet \
		--overwrite --record vinyals-triplet
	$(BIN)/tinysiam train --recipe vinyals-relation --data-dir $(DATA_DIR) --out $(RESULTS_RUNS)/vinyals-relation \
		--overwrite --record vinyals-relation

# the triplet recipe with twice the steps (about 42 minutes of training on 2 cores)
results-vinyals-long: $(STAMP)
	$(BIN)/tinysiam train --recipe vinyals-triplet --epochs 16 --data-dir $(DATA_DIR) \
		--out $(RESULTS_RUNS)/vinyals-triplet-16 --overwrite --record vinyals-triplet-16

# without --overwrite: a stopped protocol continues with the fold it stopped in
results-faces: $(STAMP)
	$(BIN)/tinysiam folds --recipe faces --data-dir $(DATA_DIR) --out $(RESULTS_RUNS)/faces-8fold-600 --record faces-8fold-600

results-baselines: $(STAMP)
	$(BIN)/tinysiam eval --protocol lake --baseline mhd --record lake-mhd
	$(BIN)/tinysiam eval --protocol lake --baseline pixels --record lake-pixels

results-digits: $(STAMP)
	$(BIN)/tinysiam demo --data digits --out $(RESULTS_RUNS)/digits-demo --overwrite --record digits-demo

# Bromley et al.'s time-delay net on Omniglot's pen trajectories, next to DTW and raw pixels (docs/signatures.md)
results-tdnn: $(STAMP)
	$(BIN)/tinysiam train --recipe tdnn --data-dir $(DATA_DIR) --out $(RESULTS_RUNS)/tdnn-strokes --overwrite \
		--record tdnn-strokes
	$(BIN)/tinysiam train --recipe omniglot-demo --data strokes-images --data-dir $(DATA_DIR) \
		--out $(RESULTS_RUNS)/strokes-images --overwrite --record strokes-images

# SICK relatedness (docs/sick.md): the sick recipe from three seeds, each tested once on the 4,927 test pairs
SICK_SEEDS := 0 1 2
results-sick: $(STAMP)
	for seed in $(SICK_SEEDS); do \
		$(BIN)/tinysiam train --recipe sick --seed $$seed --data-dir $(DATA_DIR) --out $(RESULTS_RUNS)/sick-seed$$seed \
			--overwrite --record sick-seed$$seed || exit 1; \
	done

# every loss at the demo's budget (the demo's recipe with another --loss), tested on Lake's runs;
# the triplet row is the demo itself (results-demo)
LOSS_RUNS := contrastive contrastive-linear chopra koch nt-xent
results-losses: $(STAMP)
	for loss in $(LOSS_RUNS); do \
		$(BIN)/tinysiam train --recipe omniglot-demo --loss $$loss --out $(RESULTS_RUNS)/loss-$$loss --overwrite \
			--record loss-$$loss || exit 1; \
	done
	$(BIN)/tinysiam train --recipe omniglot-demo --loss relation --preset relation28 --way 5 --shot 1 --batch 80 \
		--out $(RESULTS_RUNS)/loss-relation --overwrite --record loss-relation

# the learning curves in docs/, from the records
curves: $(STAMP)
	$(BIN)/python scripts/learning_curves.py results/omniglot-demo.json results/omniglot-30min.json \
		--out docs/omniglot_learning_curves.png
	$(BIN)/python scripts/learning_curves.py results/omniglot-koch-10min-seed0.json results/omniglot-full-seed0.json \
		results/omniglot-full-seed1.json results/omniglot-full-seed2.json --lake --out docs/omniglot_lake_curves.png \
		--ylabel "accuracy on Lake's 20 runs (20-way within-alphabet one-shot)"
	$(BIN)/python scripts/learning_curves.py results/faces-8fold-600.json --out docs/faces_learning_curves.png \
		--ylabel "validation accuracy (5-way one-shot, 5 held-out subjects)"
