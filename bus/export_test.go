package bus

// Peers returns how many other nodes of its cluster s has routes to.
func Peers(s *Server) int { return s.ns.NumRemotes() }

// Interest returns how many subscriptions s knows of, its clients' and
// those its routes told it of, that match subject.
func Interest(s *Server, subject string) int { return s.ns.GlobalAccount().Interest(subject) }

// ConnectedURL returns the URL of the server c is connected to, "" while
// it is not.
func ConnectedURL(c *Conn) string { return c.nc.ConnectedUrl() }

// SetServerPool makes urls, in this order, the servers c reconnects to,
// forgetting those the servers told it of (until one tells it of a new
// server).
func SetServerPool(c *Conn, urls ...string) error { return c.nc.SetServerPool(urls) }

// Servers returns the URLs of the servers c knows, in the order it tries
// them when it reconnects, the one it is connected to first.
func Servers(c *Conn) []string { return c.nc.Servers() }

// ReplyInbox returns a subject on which c takes the replies to its
// requests, and which its subscription for them matches once it has sent
// a request.
func ReplyInbox(c *Conn) string { return c.nc.NewRespInbox() }
