package main

import (
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/internal/stats"
	"github.com/trustack/trustack/up"
)

// network measures the data plane of `trustack up --nodes 2 --driver qemu
// --network linux` (as root: each host a network namespace): how long a
// guest takes from its POST /servers to its first answer from a peer on
// the other host, against its boot alone (the same boot's ready line,
// which the test guest prints before it brings its network up), and how
// long a security group rule takes from its POST (or DELETE) to every
// host's firewall.
func network(binary string, runs, rules int) error {
	if runs < 1 || rules < 1 {
		return fmt.Errorf("-network-runs %d, -rules %d: want at least 1 each", runs, rules)
	}
	fmt.Printf("test guest of %s, TCG, m1.tiny; trustack up --nodes 2, driver qemu, network linux; %d boots one at a time, each of a guest pinging a peer on the other host; %d rules each created and deleted; consoles polled every 100 ms, firewalls by nft every few ms\n",
		guestDir, runs, rules)
	conf := "[compute]\ndriver = qemu\naccel = tcg\n[network]\ndriver = linux\n"
	return withCloud(binary, "sqlite", 2, conf, func(openrc string) error {
		dataDir := filepath.Dir(openrc)
		defer up.RemoveFabric(dataDir)
		defer killGuests(dataDir)
		c, err := newGuestCloud(filepath.Join(dataDir, "demo-openrc"))
		if err != nil {
			return err
		}
		start := time.Now()
		peerURL, err := c.create("peer", nil)
		if err != nil {
			return err
		}
		if _, err := c.await(peerURL, "peer", start, "trustack-guest address: eth0 "); err != nil {
			return err
		}
		var peer struct {
			Server struct {
				ID        string
				Addresses map[string][]struct{ Addr string }
			}
		}
		if err := c.s.call(c.client, "GET", peerURL, nil, &peer); err != nil {
			return err
		}
		var peerIP string
		for _, addrs := range peer.Server.Addresses {
			peerIP = addrs[0].Addr
		}
		script := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, `#!/bin/sh
i=0
while [ $i -lt 600 ]; do ping -c 1 -W 1 %s >/dev/null 2>&1 && { echo "peer answered"; exit; }; i=$((i + 1)); done
echo "peer unreachable"
`, peerIP))
		var booted, answered []time.Duration
		for i := range runs {
			name := fmt.Sprintf("pinger-%d", i+1)
			start := time.Now()
			url, err := c.create(name, map[string]any{"user_data": script, "os:scheduler_hints": map[string]any{"different_host": []string{peer.Server.ID}}})
			if err != nil {
				return err
			}
			times, err := c.await(url, name, start, guestReady, "trustack-guest script: peer answered")
			if err == nil && i < runs-1 { // the last stays, for the rules
				err = c.remove(url)
			}
			if err != nil {
				return err
			}
			fmt.Printf("  boot %d: ready %.2f s, first answer from the peer %.2f s\n", i+1, times[0].Seconds(), times[1].Seconds())
			booted, answered = append(booted, times[0]), append(answered, times[1])
		}
		fmt.Printf("boot alone (to ready): median %.2f s, p99 %.2f s; to the first answer from the peer: median %.2f s, p99 %.2f s (the network's part: median %.2f s)\n",
			stats.Median(booted).Seconds(), stats.Percentile(booted, 0.99).Seconds(), stats.Median(answered).Seconds(), stats.Percentile(answered, 0.99).Seconds(),
			(stats.Median(answered) - stats.Median(booted)).Seconds())
		return propagation(c, up.FabricPrefix(dataDir), rules)
	})
}

// propagation creates rules in the project's default group, whose ports
// are on both hosts, and deletes them, one at a time, and reports how long
// each took from its request to every host's firewall.
func propagation(c *guestCloud, prefix string, rules int) error {
	network := c.s.base + "/network/v2.0"
	var groups struct {
		SecurityGroups []struct{ ID string } `json:"security_groups"`
	}
	if err := c.s.call(c.client, "GET", network+"/security-groups?name=default", nil, &groups); err != nil {
		return err
	}
	if len(groups.SecurityGroups) != 1 {
		return fmt.Errorf("%d security groups named default, want 1", len(groups.SecurityGroups))
	}
	hosts := []string{prefix + "-compute-1", prefix + "-compute-2"}
	var added, deleted []time.Duration
	for i := range rules {
		port := 20000 + i
		match := fmt.Sprintf("tcp dport %d accept", port)
		start := time.Now()
		var rule struct {
			SecurityGroupRule struct{ ID string } `json:"security_group_rule"`
		}
		if err := c.s.call(c.client, "POST", network+"/security-group-rules", map[string]any{"security_group_rule": map[string]any{
			"security_group_id": groups.SecurityGroups[0].ID, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
			"port_range_min": port, "port_range_max": port}}, &rule); err != nil {
			return err
		}
		took, err := untilEveryFirewall(hosts, start, func(ruleset string) bool { return strings.Contains(ruleset, match) })
		if err != nil {
			return fmt.Errorf("rule %d created: %w", i+1, err)
		}
		added = append(added, took)
		start = time.Now()
		if err := c.s.call(c.client, "DELETE", network+"/security-group-rules/"+rule.SecurityGroupRule.ID, nil, nil); err != nil {
			return err
		}
		if took, err = untilEveryFirewall(hosts, start, func(ruleset string) bool { return !strings.Contains(ruleset, match) }); err != nil {
			return fmt.Errorf("rule %d deleted: %w", i+1, err)
		}
		deleted = append(deleted, took)
	}
	fmt.Printf("a rule from its request to both hosts' firewalls: created median %.0f ms, p99 %.0f ms; deleted median %.0f ms, p99 %.0f ms (target under 1 s)\n",
		ms(stats.Median(added)), ms(stats.Percentile(added, 0.99)), ms(stats.Median(deleted)), ms(stats.Percentile(deleted, 0.99)))
	return nil
}

// untilEveryFirewall polls the firewall of each host (the namespace's
// inet table trustack) until done holds for it, and returns the time from
// start until it held for the last.
func untilEveryFirewall(hosts []string, start time.Time, done func(ruleset string) bool) (time.Duration, error) {
	var wg sync.WaitGroup
	took, errs := make([]time.Duration, len(hosts)), make([]error, len(hosts))
	for i, ns := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < 30*time.Second {
				out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "trustack").Output()
				if err == nil && done(string(out)) {
					took[i] = time.Since(start)
					return
				}
			}
			errs[i] = fmt.Errorf("host %s: not done within 30 s", ns)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return slices.Max(took), nil
}
