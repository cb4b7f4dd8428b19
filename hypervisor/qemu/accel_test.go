package qemu

import (
	"context"
	"testing"
	"time"
)

func TestCanaryBootsUnderTCG(t *testing.T) {
	// Under TCG the canary must boot, or auto would take a KVM that works
	// for a broken one.
	if err := canary(context.Background(), "qemu-system-x86_64", "tcg", 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestChooseAccel(t *testing.T) {
	accel, why := chooseAccel(context.Background(), "qemu-system-x86_64", "auto", 10*time.Second)
	if accel != "kvm" && accel != "tcg" || why == "" {
		t.Fatalf("auto chose %q because %q", accel, why)
	}
	t.Logf("auto chose %s: %s", accel, why)
	if accel, _ := chooseAccel(context.Background(), "qemu-system-x86_64", "tcg", time.Second); accel != "tcg" {
		t.Errorf("tcg configured, %s chosen", accel)
	}
}
