#!/usr/bin/env bash
# The MNIST recall-QPS plot of docs/results.md in one command (bench/recall-qps.sh mnist ...):
#   bench/mnist-recall-qps.sh /tmp/mnist out/mnist [NQ]
exec "$(dirname "$0")/recall-qps.sh" mnist "$@"
