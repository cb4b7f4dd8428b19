// Package stats summarises the samples that benchmarks take: medians and
// percentiles by nearest rank.
package stats

import (
	"math"
	"slices"
)

// Median returns the median of xs, which it sorts: of an even number,
// the mean of the middle two. It panics if xs is empty.
func Median[T ~int64 | ~float64](xs []T) T {
	slices.Sort(xs)
	n := len(xs)
	return (xs[(n-1)/2] + xs[n/2]) / 2
}

// Percentile returns the p-th quantile (0 < p ≤ 1) of xs by nearest
// rank, which it sorts: of fewer than 100 values, the 99th percentile is
// the largest. It panics if xs is empty.
func Percentile[T ~int64 | ~float64](xs []T, p float64) T {
	slices.Sort(xs)
	return xs[max(0, int(math.Ceil(p*float64(len(xs))))-1)]
}
