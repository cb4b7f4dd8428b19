// Package wire holds the conversations between trustack's controllers and
// its compute hosts over the bus, in the one place both sides import: for
// each conversation its subjects, its messages, the client that the side
// asking calls, and the Serve function that hands each request to the
// side answering. What each side does with a request stays on its side:
// compute and attest on the controllers, agent and dcc on the hosts.
//
// The conversations:
//   - compute (compute.go): an agent registers its host, beats and reports
//     servers whose power changed by itself; controllers ask it to spawn,
//     destroy, power and snapshot servers, and for consoles.
//   - network (network.go): controllers ask an agent to plug and unplug
//     ports, apply security groups, and serve DHCP and routers.
//   - volume (volume.go): controllers ask a storage host's agent to make,
//     grow, snapshot, delete and serve volumes, and a compute host's to
//     plug them into servers; a storage host reports how much of an
//     image it has copied for a volume it makes from one.
//   - attestation (attest.go): an agent registers its TPM with a verifier
//     and tells it of new measurements; verifiers ask it for evidence and
//     tell it when its host is revoked.
//
// A host's agent sends what it tells the controllers and verifiers on
// subjects of its own host (fromSubject), the only ones its grant lets it
// publish to on a bus that authenticates agents: the subject says which
// host sent a message, and a message about another host than its sender
// is dropped, a request answered EFORBIDDEN, and reported as a Spoof.
// Replies need no such check: an agent may answer only the requests it
// received, on its own host's subjects.
//
// Errors cross the bus as the codes of package trustack. An error of a
// request that got no reply has a NoReply method that reports true (see
// package bus): the host may or may not have done what was asked.
package wire

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
)

// token escapes s into a single token of a subject: dots, which separate
// tokens, wildcards and spaces are percent-encoded (and the percent sign),
// so that names such as host names, which may hold dots, fit in one.
func token(s string) string { return tokenEscaper.Replace(s) }

var tokenEscaper = strings.NewReplacer("%", "%25", ".", "%2E", "*", "%2A", ">", "%3E", " ", "%20")

// HostGrant returns the subjects a registered host's agent may publish to
// and subscribe to on a bus that authenticates it: its own host's.
func HostGrant(host string) (publish, subscribe []string) {
	return []string{fromSubject(host, ">")}, []string{hostSubject(host), attesterSubject(host)}
}

// fromPrefix starts the subjects that hosts send on.
const fromPrefix = "trustack.from."

// fromSubject is the subject on which a host's agent sends what (such as
// "heartbeat").
func fromSubject(host, what string) string { return fromPrefix + token(host) + "." + what }

// fromEveryHost is the subject on which controllers hear what from every
// host.
func fromEveryHost(what string) string { return fromPrefix + "*." + what }

// senderOf returns the host whose subject (of fromSubject) subject is.
func senderOf(subject string) string {
	tok, _, _ := strings.Cut(strings.TrimPrefix(subject, fromPrefix), ".")
	host, err := url.PathUnescape(tok)
	if err != nil {
		return tok
	}
	return host
}

// Spoof is a message that a host's agent sent about another host.
type Spoof struct {
	Sender string // the host whose subject it came on
	Named  string // the host it named
	What   string // what it was, such as "heartbeat"
}

func (s Spoof) String() string {
	return fmt.Sprintf("host %s sent a %s naming host %s", s.Sender, s.What, s.Named)
}

// Witness is told of every Spoof, which is dropped; a nil Witness is told
// nothing.
type Witness func(ctx context.Context, s Spoof)

// vouch returns nil if named is the host that sent what on subject;
// otherwise it tells witness and returns EFORBIDDEN.
func vouch(ctx context.Context, subject, what, named string, witness Witness) error {
	sender := senderOf(subject)
	if sender == named {
		return nil
	}
	s := Spoof{Sender: sender, Named: named, What: what}
	if witness != nil {
		witness(ctx, s)
	}
	return trustack.Errorf(trustack.EFORBIDDEN, "%s: an agent speaks only for its own host", s)
}

// fromHosts returns the handler of the requests (or events) that hosts
// send as what: fn gets those whose payload names (by named) the host
// that sent it; the others are spoofs.
func fromHosts[Req, Resp any](what string, witness Witness, named func(Req) string, fn func(context.Context, Req) (Resp, error)) bus.HandlerFunc {
	return bus.Handler(func(ctx context.Context, req Req) (Resp, error) {
		if err := vouch(ctx, bus.RequestSubject(ctx), what, named(req), witness); err != nil {
			var none Resp
			return none, err
		}
		return fn(ctx, req)
	})
}

// RegistrationGrant returns the subjects an agent that has not registered
// its TPM yet may publish to: the registration requests, nothing else.
func RegistrationGrant() (publish []string) {
	return []string{SubjectRegisterTPM, activateSubjects}
}

// MaxRejoins is how many times a request to a host's agent is asked
// again because the agent joined again while it waited: an agent that
// crashes on the request itself is not asked for ever. RejoinLook is how
// often a waiting request looks at its host.
const (
	MaxRejoins = 3
	RejoinLook = 2 * time.Second
)

// AskWhileJoined calls ask, a request to a host's agent, looking at the
// host (as host reads it) every look meanwhile: if its agent joined again
// (trustack.Host.JoinedSince: it restarted, or reconnected to the bus,
// and the request may have been lost on the way), ask's context is
// cancelled and rejoined is true, so that the caller may ask again at
// once rather than wait for the request's timeout.
func AskWhileJoined(ctx context.Context, look time.Duration, host func(context.Context) (*trustack.Host, error), ask func(context.Context) error) (rejoined bool, err error) {
	before, err := host(ctx)
	if err != nil {
		return false, ask(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var again atomic.Bool
	answered := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		tick := time.NewTicker(look)
		defer tick.Stop()
		for {
			select {
			case <-answered:
				return
			case <-tick.C:
			}
			if now, err := host(ctx); err == nil && now.JoinedSince(before) {
				again.Store(true)
				cancel()
				return
			}
		}
	})
	err = ask(ctx)
	close(answered)
	watch.Wait()
	return again.Load(), err
}
