package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/trustack/trustack/internal/stats"
)

// target is one kind of request to measure.
type target struct {
	name    string
	path    string            // below the identity endpoint
	headers map[string]string // besides X-Auth-Token
}

// identity measures authenticated GETs on the identity API.
func identity(openrc string, clients int, duration time.Duration, rate float64) error {
	s, err := openSession(openrc)
	if err != nil {
		return err
	}
	token, userID, auth := s.token, s.userID, s.base+"/identity/v3"
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	for _, t := range []target{
		{name: "GET /identity/v3/users/{id} (token check, policy, one row)", path: "/users/" + userID},
		{name: "GET /identity/v3/auth/tokens (validate a subject token, with its catalog)", path: "/auth/tokens", headers: map[string]string{"X-Subject-Token": token}},
	} {
		fmt.Println(t.name)
		for _, r := range []float64{0, rate} {
			res, err := measure(client, auth+t.path, token, t.headers, clients, duration, r)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			mode := "as fast as possible"
			if r > 0 {
				mode = fmt.Sprintf("at %.0f req/s", r)
			}
			fmt.Printf("  %-20s %d clients, %v: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d\n",
				mode, clients, duration, float64(res.n)/duration.Seconds(), ms(res.p50), ms(res.p99), res.errors)
		}
	}
	return nil
}

type result struct {
	n, errors int
	p50, p99  time.Duration
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measure runs the clients for a warm-up and then for duration, counting
// only requests that start within the measured window. With rate > 0 the
// clients together send rate requests per second, each at its scheduled
// time or as soon after it as the client is free, and latency counts from
// the scheduled time.
func measure(client *http.Client, url, token string, headers map[string]string, clients int, duration time.Duration, rate float64) (result, error) {
	warmup := 2 * time.Second
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+duration)
	var mu sync.Mutex
	var all []time.Duration
	var errors int
	var first error
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var bad int
			// Each client's schedule: one request every clients/rate, offset
			// so the clients interleave.
			interval := time.Duration(float64(clients) / rate * float64(time.Second))
			next := start.Add(time.Duration(c) * interval / time.Duration(clients))
			for {
				t0 := time.Now()
				if rate > 0 {
					if wait := time.Until(next); wait > 0 {
						time.Sleep(wait)
					}
					t0, next = next, next.Add(interval)
				}
				if t0.After(end) {
					break
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("X-Auth-Token", token)
				for k, v := range headers {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					bad++
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, t1.Sub(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(all) == 0 {
		return result{}, fmt.Errorf("no successful request: %v", first)
	}
	return result{n: len(all), errors: errors, p50: stats.Percentile(all, 0.50), p99: stats.Percentile(all, 0.99)}, nil
}
