#!/bin/sh
# Issue 6: SIGKILL during `pacer train resnet18`, then --resume: the checkpoint on disk is
# whole (it loads), and training ends with the same result as an uninterrupted run. The kill
# may land mid-save: the save writes a temporary file and renames it, so the checkpoint is
# the previous one or the new one, never a torn one.
# Usage: kill_resume_test.sh PACER WORK_DIR
set -eu
pacer=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
"$pacer" prepare fashion-mnist --out "$work/data" --limit 64 --quiet > /dev/null
common="--data $work/data --image-size 16 --batch 8 --epochs 2 --optimizer sgd --lr 0.05 --warmup-epochs 0
        --seed 1 --loader-threads 1 --quiet"
# shellcheck disable=SC2086
full=$("$pacer" train resnet18 $common | tail -1)

# shellcheck disable=SC2086
"$pacer" train resnet18 $common --out "$work/run" --checkpoint-every 1 > /dev/null &
pid=$!
# Kill it once a few checkpoints have been written (never before the first one).
n=0
while [ ! -s "$work/run/checkpoint.safetensors" ] || [ "$(grep -c ':::MLL' "$work/run/mlperf.log" 2>/dev/null || echo 0)" -lt 25 ]; do
  n=$((n + 1))
  if [ $n -gt 600 ]; then echo "no checkpoint after 60 s" >&2; kill -9 $pid; exit 1; fi
  if ! kill -0 $pid 2>/dev/null; then break; fi
  sleep 0.1
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
ls "$work/run"
# shellcheck disable=SC2086
resumed=$("$pacer" train resnet18 $common --resume "$work/run/checkpoint.safetensors" | tail -1)
acc() { echo "$1" | sed 's/.*"eval_accuracy": \([0-9.e+-]*\).*/\1/'; }
echo "uninterrupted: $full"
echo "resumed:       $resumed"
if [ "$(acc "$full")" != "$(acc "$resumed")" ]; then echo "FAIL: different results" >&2; exit 1; fi
# A kill during a save may leave its temporary file (checkpoint.safetensors.tmp.<pid>); the
# checkpoint itself is only ever replaced whole, by rename, which the resume above proved.
echo "kill/resume OK"
