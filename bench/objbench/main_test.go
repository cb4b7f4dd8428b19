package main

import (
	"context"
	"testing"
	"time"
)

// TestSmallRun runs the benchmark at a small scale, so that it keeps
// working between runs of `make bench`: 4 clients for half a second, a
// 4 MiB object, and 40 objects of 4 KiB to repair. It checks that each
// phase did its work, not how fast.
func TestSmallRun(t *testing.T) {
	o := options{phases: "123", dir: t.TempDir(), nodes: 4, clients: 4, size: 4096, containers: 2, duration: 500 * time.Millisecond,
		largeMiB: 4, reads: 1, repairObjects: 40, repairKiB: 4, repairTimeout: time.Minute}
	res, err := measure(context.Background(), o, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	if res.puts == 0 || res.boundFiles == 0 {
		t.Errorf("got %d PUTs and %d files of the bound, want some of each", res.puts, res.boundFiles)
	}
	if res.restored == 0 {
		t.Error("the repair restored no copy: the wiped node held none")
	}
}
