package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestThousandBootsOnFiftyHosts has 64 clients ask for 1,000 servers at
// once from `trustack up` with 50 fake compute hosts, more than the hosts
// hold: 70% m1.tiny and 30% m1.small, a tenth of them in anti-affinity
// groups of ten. Every server must end ACTIVE, or in ERROR for want of
// room; no host may hold more than it has, by the API's account or by the
// flavors of the servers on it; no two members of an anti-affinity group
// may share a host; and the hypervisors must run exactly the ACTIVE
// servers, each where the API says.
func TestThousandBootsOnFiftyHosts(t *testing.T) {
	need(t, "openstack")
	const (
		hosts   = 50
		boots   = 1000
		clients = 64
		// The first groups*groupSize boots are in anti-affinity groups.
		groups    = 10
		groupSize = 10
	)
	// Each fake host has 16 GiB of RAM and 200 GiB of disk, and may not
	// overcommit either: 800 GiB of RAM in all, for 950 GiB asked.
	// It measures compute, without attestation: 50 swtpm instances would
	// take half a minute to manufacture.
	c := startUp(t, "--nodes", fmt.Sprint(hosts), "--attestation", "no")
	admin := c.openrc("openrc")
	compute := "http://" + c.addr + "/compute/v2.1"
	tok := token(t, admin)
	liftQuotas(t, admin, compute, tok)
	path, _ := imageFile(t, 1<<20)
	image := must(t, admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", path, "-f", "value", "-c", "id", "cirros")

	groupOf := map[string]string{} // server name → group ID
	var groupIDs []string
	for g := range groups {
		var created struct {
			ServerGroup struct{ ID string } `json:"server_group"`
		}
		if resp := api(t, "POST", compute+"/os-server-groups", tok, map[string]any{"server_group": map[string]any{
			"name": fmt.Sprintf("spread-%d", g), "policies": []string{"anti-affinity"}}}, &created); resp.StatusCode != 200 {
			t.Fatalf("create anti-affinity group: status %d", resp.StatusCode)
		}
		groupIDs = append(groupIDs, created.ServerGroup.ID)
	}
	body := func(i int) map[string]any {
		name := fmt.Sprintf("scale-%04d", i)
		flavor := "1" // m1.tiny
		if i%10 >= 7 {
			flavor = "2" // m1.small
		}
		b := map[string]any{"server": map[string]any{"name": name, "imageRef": image, "flavorRef": flavor}}
		if i < groups*groupSize {
			g := groupIDs[i/groupSize]
			groupOf[name] = g
			b["os:scheduler_hints"] = map[string]any{"group": g}
		}
		return b
	}
	bodies := make([]map[string]any, boots)
	for i := range bodies {
		bodies[i] = body(i)
	}

	start := time.Now()
	var mu sync.Mutex
	var failures []string
	next := make(chan map[string]any)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for b := range next {
				status, _, err := createServer(compute, tok, b)
				if err != nil || status != http.StatusAccepted {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%v: status %d, %v", b["server"].(map[string]any)["name"], status, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, b := range bodies {
		next <- b
	}
	close(next)
	wg.Wait()
	accepted := time.Since(start)
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests refused; the first: %s", len(failures), boots, failures[0])
	}

	servers := waitBuilds(t, compute, tok, 5*time.Minute)
	if len(servers) != boots {
		t.Fatalf("%d servers, want %d", len(servers), boots)
	}
	t.Logf("%d requests accepted in %v; every build ended after %v", boots, accepted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	flavorRAM := map[string]int{"1": 512, "2": 2048}
	flavorDisk := map[string]int{"1": 1, "2": 20}
	active := map[string]serverDetail{}
	ram, disk, vcpus, count := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	groupHosts := map[string][]string{}
	failed := 0
	for _, s := range servers {
		switch {
		case s.Status == "ACTIVE" && s.Host != nil:
			active[s.ID] = s
			h := *s.Host
			ram[h] += flavorRAM[s.Flavor.ID]
			disk[h] += flavorDisk[s.Flavor.ID]
			vcpus[h]++
			count[h]++
			if g := groupOf[s.Name]; g != "" {
				groupHosts[g] = append(groupHosts[g], h)
			}
		case s.Status == "ERROR" && s.Fault != nil && strings.HasPrefix(s.Fault.Message, "No valid host was found."):
			failed++
		default:
			t.Errorf("server %s (%s) is %s with fault %+v, want ACTIVE or ERROR for want of a host", s.Name, s.ID, s.Status, s.Fault)
		}
	}
	t.Logf("%d servers ACTIVE, %d refused for want of room", len(active), failed)
	if len(active) == 0 || failed == 0 {
		t.Errorf("%d ACTIVE and %d refused, want both: the hosts hold most of the servers, not all", len(active), failed)
	}

	hs := hypervisors(t, compute, tok)
	if len(hs) != hosts {
		t.Errorf("os-hypervisors: %d hosts, want %d", len(hs), hosts)
	}
	for name, h := range hs {
		if h.MemoryMBUsed > h.MemoryMB || h.LocalGBUsed > h.LocalGB || h.VCPUsUsed > 4*h.VCPUs {
			t.Errorf("%s is over its capacity: %+v", name, h)
		}
		if ram[name] > h.MemoryMB || disk[name] > h.LocalGB {
			t.Errorf("%s runs servers with %d MiB and %d GiB, over its %d MiB and %d GiB", name, ram[name], disk[name], h.MemoryMB, h.LocalGB)
		}
		if h.MemoryMBUsed != ram[name] || h.LocalGBUsed != disk[name] || h.VCPUsUsed != vcpus[name] || h.RunningVMs != count[name] {
			t.Errorf("%s reports %d MiB, %d GiB, %d vCPUs used by %d servers; its ACTIVE servers have %d MiB, %d GiB, %d vCPUs in %d",
				name, h.MemoryMBUsed, h.LocalGBUsed, h.VCPUsUsed, h.RunningVMs, ram[name], disk[name], vcpus[name], count[name])
		}
	}
	for _, g := range slices.Sorted(maps.Keys(groupHosts)) {
		placed := groupHosts[g]
		if distinct := slices.Compact(slices.Sorted(slices.Values(placed))); len(distinct) != len(placed) {
			t.Errorf("anti-affinity group %s has members sharing hosts: %v", g, placed)
		}
	}

	stateFiles := map[string]string{}
	for i := 1; i <= hosts; i++ {
		name := fmt.Sprintf("compute-%d", i)
		stateFiles[name] = filepath.Join(c.dir, "data", "hosts", name, "fake-hypervisor.json")
	}
	checkHypervisors(t, stateFiles, active)
}
