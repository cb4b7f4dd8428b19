package client

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress counts the bytes of a transfer written to it and reports them:
// on a terminal as a bar redrawn in place, elsewhere as one line at the
// end. A progress with no writer reports nothing.
type progress struct {
	w        io.Writer // nil for no reports
	terminal bool
	verb     string // "uploaded"
	total    int64
	done     int64
	start    time.Time
	drawn    time.Time // when the bar was last drawn
}

// redraw is how often at most the bar is drawn.
const redraw = 100 * time.Millisecond

// progress returns a report of a transfer of total bytes.
func (c *Client) progress(verb string, total int64) *progress {
	return &progress{w: c.out.Progress, terminal: c.out.Terminal, verb: verb, total: total, start: time.Now()}
}

// Write counts b; it never fails.
func (p *progress) Write(b []byte) (int, error) {
	p.reach(p.done + int64(len(b)))
	return len(b), nil
}

// reach reports that done bytes are transferred, for a transfer that
// another party carries out and reports on.
func (p *progress) reach(done int64) {
	p.done = done
	if p.w != nil && p.terminal {
		if now := time.Now(); now.Sub(p.drawn) >= redraw {
			p.drawn = now
			p.draw(now)
		}
	}
}

// finish writes the final report.
func (p *progress) finish() {
	if p.w == nil {
		return
	}
	now := time.Now()
	if p.terminal {
		p.draw(now)
		fmt.Fprintln(p.w)
		return
	}
	elapsed := now.Sub(p.start)
	fmt.Fprintf(p.w, "%s %s in %s (%s/s)\n", p.verb, iec(p.done), elapsed.Round(time.Millisecond), iec(rate(p.done, elapsed)))
}

// draw writes the bar over the current line: [=====>    ] 12.0 MiB / 40.0 MiB  30%  5.1 MiB/s
func (p *progress) draw(now time.Time) {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.done)/float64(p.total), 1)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	fmt.Fprintf(p.w, "\r[%s] %s / %s %3.0f%% %s/s\x1b[K", bar, iec(p.done), iec(p.total), frac*100, iec(rate(p.done, now.Sub(p.start))))
}

// rate is n bytes over d, per second.
func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// iec renders a size in binary units: 512 B, 1.5 KiB, 3.0 MiB.
func iec(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
