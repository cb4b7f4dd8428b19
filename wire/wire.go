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
// Errors cross the bus as the codes of package trustack. An error of a
// request that got no reply has a NoReply method that reports true (see
// package bus): the host may or may not have done what was asked.
package wire

import "strings"

// token escapes s into a single token of a subject: dots, which separate
// tokens, wildcards and spaces are percent-encoded (and the percent sign),
// so that names such as host names, which may hold dots, fit in one.
func token(s string) string { return tokenEscaper.Replace(s) }

var tokenEscaper = strings.NewReplacer("%", "%25", ".", "%2E", "*", "%2A", ">", "%3E", " ", "%20")

// HostGrant returns the subjects a registered host's agent may publish to
// and subscribe to on a bus that authenticates it: the controllers' and
// verifiers' subjects it sends to, and its own host's subjects.
func HostGrant(host string) (publish, subscribe []string) {
	return []string{SubjectRegister, SubjectPower, SubjectHeartbeat, SubjectMeasured, SubjectMetadata, SubjectImageCopied},
		[]string{hostSubject(host), attesterSubject(host)}
}

// RegistrationGrant returns the subjects an agent that has not registered
// its TPM yet may publish to: the registration requests, nothing else.
func RegistrationGrant() (publish []string) {
	return []string{SubjectRegisterTPM, activateSubjects}
}
