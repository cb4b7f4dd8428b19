package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/trustack/trustack/internal/stats"
)

// volumes measures block storage in `trustack up --nodes 2 --driver qemu`,
// whose first host keeps the volumes as qcow2 files: how long a volume
// takes from its POST /volumes to being attached to a running guest (made
// by the storage host, then plugged in over QMP), for a guest on the
// storage host, which opens the file, and for one on the other host,
// which reaches it over NBD with TLS.
func volumes(binary string, runs int) error {
	if runs < 1 {
		return fmt.Errorf("-volume-runs %d: want at least 1", runs)
	}
	fmt.Printf("test guest of %s, TCG; trustack up --nodes 2, driver qemu, file volumes (qcow2) on the first host; %d volumes of 1 GiB for each of two guests, one at a time, each created, attached, detached and deleted\n",
		guestDir, runs)
	conf := "[compute]\ndriver = qemu\naccel = tcg\n"
	return withCloud(binary, "sqlite", 2, conf, func(openrc string) error {
		dataDir := filepath.Dir(openrc)
		defer killGuests(dataDir)
		c, err := newGuestCloud(filepath.Join(dataDir, "demo-openrc"))
		if err != nil {
			return err
		}
		admin, err := openSession(openrc)
		if err != nil {
			return err
		}
		volumes := c.s.base + "/volume/v3/" + c.s.projectID + "/volumes"
		guests := map[string]string{} // host → server URL
		var first string
		for _, name := range []string{"g1", "g2"} {
			var more map[string]any
			if first != "" {
				more = map[string]any{"os:scheduler_hints": map[string]any{"different_host": []string{first}}}
			}
			url, err := c.create(name, more)
			if err != nil {
				return err
			}
			if _, err := c.await(url, name, time.Now(), guestReady); err != nil {
				return err
			}
			var s struct {
				Server struct {
					ID   string
					Host string `json:"OS-EXT-SRV-ATTR:host"`
				}
			}
			if err := admin.call(c.client, "GET", admin.base+"/compute/v2.1/servers/"+filepath.Base(url), nil, &s); err != nil {
				return err
			}
			first, guests[s.Server.Host] = s.Server.ID, url
		}
		for _, host := range []string{"compute-1", "compute-2"} {
			url := guests[host]
			var took []time.Duration
			for range runs {
				start := time.Now()
				var v struct{ Volume struct{ ID string } }
				if err := c.s.call(c.client, "POST", volumes, map[string]any{"volume": map[string]any{"size": 1}}, &v); err != nil {
					return err
				}
				vol := volumes + "/" + v.Volume.ID
				if err := awaitVolume(c, vol, "available"); err != nil {
					return err
				}
				if err := c.s.call(c.client, "POST", url+"/os-volume_attachments", map[string]any{"volumeAttachment": map[string]any{"volumeId": v.Volume.ID}}, nil); err != nil {
					return err
				}
				took = append(took, time.Since(start))
				if err := c.s.call(c.client, "DELETE", url+"/os-volume_attachments/"+v.Volume.ID, nil, nil); err != nil {
					return err
				}
				if err := awaitVolume(c, vol, "available"); err != nil {
					return err
				}
				if err := c.s.call(c.client, "DELETE", vol, nil, nil); err != nil {
					return err
				}
			}
			how := "the file on its own host"
			if host != "compute-1" {
				how = "NBD from compute-1"
			}
			fmt.Printf("  guest on %s (%s): create and attach, median %.0f ms, p99 %.0f ms\n", host, how,
				stats.Percentile(took, 0.5).Seconds()*1000, stats.Percentile(took, 0.99).Seconds()*1000)
		}
		return nil
	})
}

// awaitVolume polls a volume every 20 ms until it has a status.
func awaitVolume(c *guestCloud, url, status string) error {
	for start := time.Now(); time.Since(start) < guestTimeout; time.Sleep(20 * time.Millisecond) {
		var v struct{ Volume struct{ Status string } }
		if err := c.s.call(c.client, "GET", url, nil, &v); err != nil {
			return err
		}
		if v.Volume.Status == status {
			return nil
		}
		if v.Volume.Status == "error" {
			return fmt.Errorf("volume %s in error", url)
		}
	}
	return fmt.Errorf("volume %s not %s within %v", url, status, guestTimeout)
}
