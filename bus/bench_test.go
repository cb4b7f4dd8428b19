package bus_test

import (
	"context"
	"sync"
	"testing"

	"github.com/trustack/trustack/bus"
)

// BenchmarkRequest measures request/reply round trips with 64 requesters
// sharing one connection, as the controller's API handlers do, against a
// handler on another connection or on the same one.
func BenchmarkRequest(b *testing.B) {
	const requesters = 64
	for _, bm := range []struct {
		name      string
		inProcess bool
		sameConn  bool
	}{
		{name: "tcp"},
		{name: "in-process", inProcess: true},
		{name: "same-conn", inProcess: true, sameConn: true},
	} {
		b.Run(bm.name, func(b *testing.B) {
			s := newServer(b)
			var opts []bus.Option
			if bm.inProcess {
				opts = append(opts, bus.InProcess(s))
			}
			controller := connect(b, s, opts...)
			agent := controller
			if !bm.sameConn {
				agent = connect(b, s, opts...)
			}
			handle(b, agent, "host.h1.status", bus.Handler(func(_ context.Context, req bootRequest) (bootReply, error) {
				return bootReply{Host: "h1", Domain: req.Server}, nil
			}))
			ctx := ctx(b)

			work := make(chan struct{}, requesters)
			var wg sync.WaitGroup
			b.ResetTimer()
			for range requesters {
				wg.Go(func() {
					for range work {
						var resp bootReply
						if err := controller.Request(ctx, "host.h1.status", bootRequest{Server: "vm1", VCPUs: 2}, &resp); err != nil {
							b.Error(err)
						}
					}
				})
			}
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
