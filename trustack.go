// Package trustack holds the vocabulary that every part of trustack shares:
// the domain types of identity, compute, images and trust, and the small set
// of error codes that travel from the store to the wire. It imports only the
// standard library; each dependency (SQL, NATS, QEMU, TPM, HTTP) lives in a
// package of its own that speaks to the rest in these terms.
package trustack

// Version is the release of this build, set by the linker for releases.
var Version = "0.1.0-dev"
