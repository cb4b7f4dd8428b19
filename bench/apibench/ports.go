package main

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// createPorts creates n ports from clients concurrent clients on a new
// network of the admin's project with a /16 subnet, each port's address
// chosen at random by the cloud, and reports ports per second and the
// latency of each POST.
func createPorts(openrc string, clients, n int) error {
	s, err := openSession(openrc)
	if err != nil {
		return err
	}
	call := s.caller(clients)
	network := s.base + "/network/v2.0"
	if err := call("PUT", network+"/quotas/"+s.projectID, map[string]any{"quota": map[string]int{"port": -1}}, nil); err != nil {
		return err
	}
	var net struct{ Network struct{ ID string } }
	if err := call("POST", network+"/networks", map[string]any{"network": map[string]any{"name": "bench"}}, &net); err != nil {
		return err
	}
	if err := call("POST", network+"/subnets", map[string]any{"subnet": map[string]any{
		"network_id": net.Network.ID, "ip_version": 4, "cidr": "10.200.0.0/16", "enable_dhcp": false}}, nil); err != nil {
		return err
	}
	var mu sync.Mutex
	var latencies []time.Duration
	var failures []error
	start := time.Now()
	fanOut(clients, n, func(i int) {
		t0 := time.Now()
		err := call("POST", network+"/ports", map[string]any{"port": map[string]any{"network_id": net.Network.ID, "name": fmt.Sprintf("bench-%d", i)}}, nil)
		took := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failures = append(failures, err)
		} else {
			latencies = append(latencies, took)
		}
	})
	elapsed := time.Since(start)
	if len(failures) > 0 {
		return fmt.Errorf("%d of %d port creations failed; the first: %w", len(failures), n, failures[0])
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	fmt.Printf("create %d ports on one /16, %d clients: %.1f s, %.0f ports/s; p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		n, clients, elapsed.Seconds(), float64(n)/elapsed.Seconds(),
		float64(pct(0.5).Microseconds())/1000, float64(pct(0.99).Microseconds())/1000, float64(latencies[len(latencies)-1].Microseconds())/1000)
	return nil
}
