package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/trustack/trustack"
)

// Remote console protocols and the console types each offers, as Nova
// names them; trustack's hosts serve the ones in consoleTypes.
var (
	consoleProtocols = map[string][]string{
		"vnc":    {"novnc", "xvpvnc"},
		"spice":  {"spice-html5"},
		"rdp":    {"rdp-html5"},
		"serial": {"serial"},
		"mks":    {"webmks"},
	}
	consoleTypes = map[string]string{"novnc": "vnc", "serial": "serial"}
)

// RemoteConsole gives the caller a new token for a console of a running
// server, of protocol and type as Nova names them ("vnc" and "novnc",
// "serial" and "serial"). The token is good for one connection through
// the console proxy within ConsoleTokenTTL. EINVALID for a type that does
// not go with the protocol or that trustack does not offer (Nova's
// unavailable console type), ECONFLICT if the server is not active,
// ENOTFOUND, EUNAVAILABLE if its host's agent does not answer.
func (s *Service) RemoteConsole(ctx context.Context, c Caller, id, protocol, typ string) (string, error) {
	types, known := consoleProtocols[protocol]
	if !known {
		return "", trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute protocol. Value: %s.", protocol)
	}
	if !slices.Contains(types, typ) {
		return "", trustack.Errorf(trustack.EINVALID, "Invalid console type %s", typ)
	}
	if consoleTypes[typ] != protocol {
		return "", trustack.Errorf(trustack.EINVALID, "Unavailable console type %s.", typ)
	}
	srv, err := s.placed(ctx, c, id)
	if err != nil {
		return "", err
	}
	if srv.VMState != trustack.VMActive {
		return "", trustack.Errorf(trustack.ECONFLICT, "Instance %s is not ready.", id)
	}
	actx, cancel := context.WithTimeout(ctx, s.opts.AgentTimeout)
	defer cancel()
	end, err := s.agents.RemoteConsole(actx, srv.Host, srv.ID, protocol, s.opts.ConsoleTokenTTL)
	if err != nil {
		return "", err
	}
	now := s.opts.Now()
	if _, err := s.store.PurgeConsoleTokens(ctx, now); err != nil {
		return "", err
	}
	token := rand.Text()
	err = s.store.CreateConsoleToken(ctx, &trustack.ConsoleToken{
		TokenHash: hashConsoleToken(token), ServerID: srv.ID, Host: srv.Host, Protocol: protocol, Type: typ,
		Address: end.Address, Secret: end.Secret, ExpiresAt: now.Add(s.opts.ConsoleTokenTTL).UTC(),
	})
	return token, err
}

// TakeConsoleToken spends a console token: it returns what the token
// gives access to and makes it useless thereafter. EUNAUTHORIZED for a
// token that was never issued, was spent, or expired, or whose server has
// left the host it was issued on or is deleted.
func (s *Service) TakeConsoleToken(ctx context.Context, token string) (*trustack.ConsoleToken, error) {
	t, err := s.store.TakeConsoleToken(ctx, hashConsoleToken(token), s.opts.Now())
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The token is invalid or has expired.")
	}
	if err != nil {
		return nil, err
	}
	srv, err := s.store.Server(ctx, t.ServerID)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND || err == nil && (srv.Host != t.Host || srv.VMState == trustack.VMDeleted) {
		return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The token's server is no longer on its host.")
	}
	return t, err
}

// ConsoleToken returns what an unspent, unexpired console token gives
// access to, for operators (Nova's os-console-auth-tokens); ENOTFOUND
// otherwise.
func (s *Service) ConsoleToken(ctx context.Context, token string) (*trustack.ConsoleToken, error) {
	return s.store.ConsoleToken(ctx, hashConsoleToken(token), s.opts.Now())
}

// hashConsoleToken is what stores keep of a console token.
func hashConsoleToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
