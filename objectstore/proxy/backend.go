package proxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trustack/trustack/objectstore/node"
	"github.com/trustack/trustack/objectstore/ring"
)

// newClient returns the client of the nodes: connections kept and
// reused, a bounded time to connect and to each answer, and Expect:
// 100-continue honoured so that an upload learns a node's refusal before
// sending it the body.
func newClient(connect, answer time.Duration) *http.Client {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: answer,
		ExpectContinueTimeout: answer,
		DisableCompression:    true,
	}}
}

// errorLimiter remembers the nodes that failed lately: a proxy does not
// wait on a node it knows to be down for every request (Swift's error
// limiting), and goes to a handoff at once.
type errorLimiter struct {
	mu    sync.Mutex
	until map[string]time.Time // by node address and device
}

// suppression is how long a node that failed is passed over.
const suppression = 10 * time.Second

func (l *errorLimiter) fail(dev ring.Device, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until == nil {
		l.until = map[string]time.Time{}
	}
	l.until[dev.Addr()+"/"+dev.Device] = now.Add(suppression)
}

func (l *errorLimiter) limited(dev ring.Device, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.until[dev.Addr()+"/"+dev.Device])
}

// nodes returns the devices to ask for a partition, in order: its
// primaries (shuffled for reads, so that load spreads; in replica order
// for writes), those that failed lately last, then up to as many
// handoffs as there are replicas.
func (p *Proxy) nodes(r *ring.Ring, part int, shuffle bool) []ring.Device {
	primaries := r.Nodes(part)
	if shuffle {
		rand.Shuffle(len(primaries), func(i, j int) { primaries[i], primaries[j] = primaries[j], primaries[i] })
	}
	now := p.opts.Now()
	var good, bad []ring.Device
	for _, d := range primaries {
		if p.limiter.limited(d, now) {
			bad = append(bad, d)
		} else {
			good = append(good, d)
		}
	}
	out := append(good, bad...)
	n := 0
	for d := range r.Handoffs(part) {
		if n == len(primaries) {
			break
		}
		out = append(out, d)
		n++
	}
	return out
}

// request sends a request to a device for the backend path (the
// target's), with the backend key; the response's body is the caller's
// to close. A failure to reach the node, or a 507 (its device is gone),
// counts against the node.
func (p *Proxy) request(ctx context.Context, dev ring.Device, part int, method, path string, header http.Header, body io.Reader) (*http.Response, error) {
	u := "http://" + dev.Addr() + "/" + dev.Device + "/" + strconv.Itoa(part) + path
	length := int64(-2)
	if lr, ok := body.(lengthReader); ok {
		body, length = lr.Reader, lr.n
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if length >= -1 {
		req.ContentLength = length
	}
	if header != nil {
		req.Header = header.Clone()
	}
	if p.opts.Key != "" {
		req.Header.Set(node.KeyHeader, p.opts.Key)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			p.limiter.fail(dev, p.opts.Now())
			p.opts.Log.Warn("object store node unreachable", "node", dev.Addr(), "device", dev.Device, "error", err)
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusInsufficientStorage {
		p.limiter.fail(dev, p.opts.Now())
	}
	return resp, nil
}

// reply is one node's answer to a request without a body to stream.
type reply struct {
	dev    ring.Device
	status int // 0 when the node could not be reached
	header http.Header
	body   []byte
}

// maxReplyBody bounds what the proxy reads of a node's answer that it
// keeps whole (a listing, an error).
const maxReplyBody = 64 << 20

// ask sends the same small request to one device and reads its answer.
func (p *Proxy) ask(ctx context.Context, dev ring.Device, part int, method, path string, header http.Header) reply {
	resp, err := p.request(ctx, dev, part, method, path, header, nil)
	if err != nil {
		return reply{dev: dev}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	if err != nil {
		return reply{dev: dev}
	}
	return reply{dev: dev, status: resp.StatusCode, header: resp.Header, body: body}
}

// fanOut sends a write without a body to every primary of the partition
// at once, header(i) being replica i's headers; a primary that cannot be
// reached (or whose device is gone) is replaced by the next handoff when
// handoffs is true. It returns every replica's final answer.
func (p *Proxy) fanOut(ctx context.Context, r *ring.Ring, part int, method, path string, header func(i int) http.Header, handoffs bool) []reply {
	primaries := r.Nodes(part)
	var spare chan ring.Device
	if handoffs {
		spare = make(chan ring.Device)
		go func() {
			defer close(spare)
			for d := range r.Handoffs(part) {
				select {
				case spare <- d:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	replies := make([]reply, len(primaries))
	var wg sync.WaitGroup
	for i, dev := range primaries {
		wg.Go(func() {
			h := header(i)
			rep := p.ask(ctx, dev, part, method, path, h)
			for spare != nil && (rep.status == 0 || rep.status == http.StatusInsufficientStorage) {
				d, ok := <-spare
				if !ok {
					break
				}
				rep = p.ask(ctx, d, part, method, path, h)
			}
			replies[i] = rep
		})
	}
	wg.Wait()
	if spare != nil {
		go func() {
			for range spare { // let the feeder end
			}
		}()
	}
	return replies
}

// quorum is how many of n replicas must agree for a write to stand.
func quorum(n int) int { return n/2 + 1 }

// bestStatus is the answer a client gets to a write that replicas
// answered with statuses (0: unreachable): the most common status of
// the class (2xx, 4xx, 5xx) that a quorum answered, else 503 (Swift's
// best_response).
func bestStatus(statuses []int) int {
	classes := map[int]int{}
	for _, s := range statuses {
		if s != 0 {
			classes[s/100]++
		}
	}
	for class, n := range classes {
		if n < quorum(len(statuses)) {
			continue
		}
		counts := map[int]int{}
		best := 0
		for _, s := range statuses {
			if s/100 == class {
				counts[s]++
				if best == 0 || counts[s] > counts[best] {
					best = s
				}
			}
		}
		return best
	}
	return http.StatusServiceUnavailable
}

// statuses lists the statuses of replies.
func statuses(replies []reply) []int {
	out := make([]int, len(replies))
	for i, r := range replies {
		out[i] = r.status
	}
	return out
}

// readFirst asks the devices of a partition in turn (primaries, then
// handoffs) until one has the thing: the first answer other than 404,
// 507 or 5xx, or a node unreachable. If none has it, the answer is 404
// when a node said so, else 503.
func (p *Proxy) readFirst(ctx context.Context, r *ring.Ring, part int, method, path string, header http.Header) reply {
	notFound := reply{}
	for _, dev := range p.nodes(r, part, true) {
		rep := p.ask(ctx, dev, part, method, path, header)
		switch {
		case rep.status == http.StatusNotFound:
			if notFound.status == 0 {
				notFound = rep
			}
		case rep.status == 0, rep.status >= 500:
		default:
			return rep
		}
	}
	if notFound.status != 0 {
		return notFound
	}
	return reply{status: http.StatusServiceUnavailable, body: []byte(fmt.Sprintf("no node of partition %d answered", part))}
}
