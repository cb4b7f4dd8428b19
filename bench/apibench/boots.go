package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustack/trustack/internal/stats"
)

// bootServers boots n m1.tiny servers from clients concurrent clients on
// the cloud of openrc, each with a port on the admin's network "private"
// if withPort, with no network interface otherwise, and reports boots per
// second and the time from each POST to its server's launch, as the
// server records it.
func bootServers(openrc string, clients, n int, withPort bool) error {
	s, err := openSession(openrc)
	if err != nil {
		return err
	}
	call := s.caller(clients)
	compute, image := s.base+"/compute/v2.1", s.base+"/image/v2"
	// Room for every boot and its port, and an image to boot from.
	if err := call("PUT", compute+"/os-quota-sets/"+s.projectID, map[string]any{"quota_set": map[string]int{"instances": -1, "cores": -1, "ram": -1}}, nil); err != nil {
		return err
	}
	var networks any = "none"
	if withPort {
		if err := call("PUT", s.base+"/network/v2.0/quotas/"+s.projectID, map[string]any{"quota": map[string]int{"port": -1}}, nil); err != nil {
			return err
		}
		var nets struct{ Networks []struct{ ID string } }
		if err := call("GET", s.base+"/network/v2.0/networks?name=private&project_id="+s.projectID, nil, &nets); err != nil {
			return err
		}
		if len(nets.Networks) != 1 {
			return fmt.Errorf("the admin's network private: found %d", len(nets.Networks))
		}
		networks = []map[string]string{{"uuid": nets.Networks[0].ID}}
	}
	var img struct{ ID string }
	if err := call("POST", image+"/images", map[string]any{"name": "bench", "disk_format": "qcow2", "container_format": "bare"}, &img); err != nil {
		return err
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	if err := call("PUT", image+"/images/"+img.ID+"/file", data, nil); err != nil {
		return err
	}

	// Boot.
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var failures []error
	start := time.Now()
	fanOut(clients, n, func(i int) {
		t0 := time.Now()
		var created struct{ Server struct{ ID string } }
		err := call("POST", compute+"/servers", map[string]any{"server": map[string]any{
			"name": fmt.Sprintf("bench-%d", i), "imageRef": img.ID, "flavorRef": "1", "networks": networks}}, &created)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failures = append(failures, err)
		} else {
			sent[created.Server.ID] = t0
		}
	})
	if len(failures) > 0 {
		return fmt.Errorf("%d of %d boot requests failed; the first: %w", len(failures), n, failures[0])
	}
	// Wait for the builds, looking only at the servers still building.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var building struct{ Servers []struct{ ID string } }
		if err := call("GET", compute+"/servers?status=BUILD", nil, &building); err != nil {
			return err
		}
		if len(building.Servers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d servers still building after 5 minutes", len(building.Servers))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var all struct {
		Servers []struct {
			ID       string
			Status   string
			Launched string `json:"OS-SRV-USG:launched_at"`
			Fault    struct{ Message string }
		}
	}
	if err := call("GET", compute+"/servers/detail", nil, &all); err != nil {
		return err
	}
	var latencies []time.Duration
	var last time.Time
	errors := 0
	faults := map[string]int{}
	for _, srv := range all.Servers {
		t0, ok := sent[srv.ID]
		if !ok {
			continue
		}
		if srv.Status != "ACTIVE" {
			errors++
			faults[srv.Status+": "+srv.Fault.Message]++
			continue
		}
		launched, err := time.Parse("2006-01-02T15:04:05.000000", srv.Launched)
		if err != nil {
			return fmt.Errorf("launched_at %q: %w", srv.Launched, err)
		}
		latencies = append(latencies, launched.Sub(t0))
		if launched.After(last) {
			last = launched
		}
	}
	if len(latencies) == 0 {
		return fmt.Errorf("no server became ACTIVE")
	}
	pct := func(p float64) time.Duration { return stats.Percentile(latencies, p) }
	took := last.Sub(start)
	what := "no network"
	if withPort {
		what = "a port each"
	}
	fmt.Printf("boot %d m1.tiny servers (%s), %d clients: %d ACTIVE, %d not, in %.1f s: %.0f boots/s; POST to ACTIVE p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		n, what, clients, len(latencies), errors, took.Seconds(), float64(len(latencies))/took.Seconds(),
		float64(pct(0.5).Microseconds())/1000, float64(pct(0.99).Microseconds())/1000, float64(latencies[len(latencies)-1].Microseconds())/1000)
	for fault, count := range faults {
		fmt.Printf("  %d servers: %s\n", count, fault)
	}
	return nil
}

// httpError is an answer other than 2xx.
type httpError struct {
	method, url string
	status      int
	body        []byte
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.url, e.status, http.StatusText(e.status), e.body)
}

// isStatus reports whether err is an answer with the HTTP status code.
func isStatus(err error, code int) bool {
	var e *httpError
	return errors.As(err, &e) && e.status == code
}

// caller returns a function that calls as s (see call) over up to clients
// kept-alive connections.
func (s session) caller(clients int) func(method, url string, body, out any) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	return func(method, url string, body, out any) error { return s.call(client, method, url, body, out) }
}

// call sends an authenticated request with client. A []byte body goes as
// application/octet-stream, any other non-nil body as JSON. It decodes the
// JSON answer into out unless out is nil; an answer other than 2xx is an
// *httpError.
func (s session) call(client *http.Client, method, url string, body, out any) error {
	var r io.Reader
	contentType := "application/json"
	if b, ok := body.([]byte); ok {
		r, contentType = bytes.NewReader(b), "application/octet-stream"
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", s.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{method: method, url: url, status: resp.StatusCode, body: data}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// fanOut calls do with 1 to n from clients goroutines, each taking the
// next number when done with its last, and returns when all are done.
func fanOut(clients, n int, do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				do(int(i))
			}
		}()
	}
	wg.Wait()
}
