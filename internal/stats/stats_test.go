package stats

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3, 1, 2 = %v, want 2", got)
	}
	if got := Median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median of 4, 1, 3, 2 ns = %v, want 2ns (the mean of 2 and 3, truncated)", got)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100 - i)
	}
	for _, c := range []struct {
		xs   []time.Duration
		p    float64
		want time.Duration
	}{
		{hundred, 0.99, 99},
		{hundred, 0.5, 50},
		{hundred, 1, 100},
		{[]time.Duration{5, 1, 4, 2, 3}, 0.99, 5},
		{[]time.Duration{5, 1, 4, 2, 3}, 0.5, 3},
		{[]time.Duration{7}, 0.01, 7},
	} {
		if got := Percentile(c.xs, c.p); got != c.want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(c.xs), c.p, got, c.want)
		}
	}
}
