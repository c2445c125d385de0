package telemetry

import (
	"bytes"
	"maps"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"
)

// brokerGuard is the embedded broker's authentication and ACL hook.
//
//   - Velo's own client (user VeloUser, the per-run secret) may publish and
//     subscribe under the gateway's topic root; it alone may use Velo's
//     client id.
//   - An operator of the config in force (user = operator name, password =
//     their stream password, checked against the credential's digest) may
//     publish commands (cmd/<verb>, never a reply, never retained) and
//     subscribe to status, camera state and command replies; an operator
//     with ReadEvents to events too.
//   - Anyone else is refused at connect. Refusals are counted and logged
//     once per burst.
type brokerGuard struct {
	mochi.HookBase
	root, clientID string
	isVelo         func(user string, password []byte) bool
	operator       func(name string) (BrokerOperator, bool)
	refused        *Refusals
	server         *mochi.Server

	mu    sync.Mutex
	rates map[string]*bucket // operator → their publish allowance
}

// An operator's publishes (all their connections together) are limited
// to commandBurst at once and commandRate per second after that: commands
// are typed by people, and one operator's flood would otherwise fill the
// queue of messages on their way to Velo's client, where the broker drops
// what overflows, a genuine command of someone else included.
const (
	commandBurst = 20
	commandRate  = 5.0
)

type bucket struct {
	tokens float64
	last   time.Time
}

func (g *brokerGuard) ID() string { return "velo-guard" }

func (g *brokerGuard) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish, mochi.OnPublishDropped}, []byte{b})
}

// OnConnectAuthenticate admits Velo and the config's operators.
func (g *brokerGuard) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if why := g.admit(cl.ID, string(pk.Connect.Username), pk.Connect.Password, pk.Connect.WillFlag); why != "" {
		g.refused.Add("connect: " + why)
		return false
	}
	return true
}

// admit is the connect decision: "" to admit, else why not.
func (g *brokerGuard) admit(clientID, user string, password []byte, will bool) string {
	if user == VeloUser {
		if !g.isVelo(user, password) {
			return "bad credentials"
		}
		return ""
	}
	if clientID == g.clientID {
		return "Velo's client id"
	}
	op, ok := g.lookup(user)
	if !ok || op.CheckSecret == nil || len(password) == 0 || !op.CheckSecret(password) {
		return "bad credentials"
	}
	if will {
		return "a will message (only Velo's client has one)"
	}
	// A session held by another user is not taken over (it would be
	// disconnected; what is queued for it would be inherited).
	if g.server != nil {
		if old, ok := g.server.Clients.Get(clientID); ok && string(old.Properties.Username) != user {
			return "client id in use by another user"
		}
	}
	return ""
}

func (g *brokerGuard) lookup(user string) (BrokerOperator, bool) {
	if g.operator == nil || user == "" {
		return BrokerOperator{}, false
	}
	return g.operator(user)
}

// OnACLCheck decides each publish (write), subscription filter and
// delivery (read).
func (g *brokerGuard) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	ok := g.allowed(string(cl.Properties.Username), topic, write)
	switch {
	case ok:
	case write:
		g.refused.Add("publish outside the client's rights")
	default:
		g.refused.Add("subscription outside the client's rights")
	}
	return ok
}

func (g *brokerGuard) allowed(user, topic string, write bool) bool {
	if user == VeloUser {
		return strings.HasPrefix(topic, g.root) && len(topic) > len(g.root)
	}
	op, ok := g.lookup(user)
	if !ok {
		return false
	}
	if write {
		return isCommandTopic(g.root, topic)
	}
	readable := []string{g.root + "status", g.root + "cameras/+/state", g.root + "cmd/+/reply", g.root + "cmd/+/+/reply"}
	if op.ReadEvents {
		readable = append(readable, g.root+"events")
	}
	for _, r := range readable {
		if covers(r, topic) {
			return true
		}
	}
	return false
}

// OnPublish limits each operator's rate (over it, a publish is
// acknowledged and dropped) and drops the retain flag of anything but
// Velo's own messages: a retained command would be delivered again on
// every subscription.
func (g *brokerGuard) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	user := string(cl.Properties.Username)
	if user == VeloUser {
		return pk, nil
	}
	if !g.take(user, time.Now()) {
		g.refused.Add("operator over its publish rate")
		return pk, packets.CodeSuccessIgnore
	}
	if pk.FixedHeader.Retain {
		pk.FixedHeader.Retain = false
		g.refused.Add("retain flag dropped")
	}
	return pk, nil
}

// take spends one of user's publish tokens, if there is one.
func (g *brokerGuard) take(user string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.rates[user]
	if b == nil {
		b = &bucket{tokens: commandBurst, last: now}
		g.rates[user] = b
	}
	b.tokens = min(commandBurst, b.tokens+now.Sub(b.last).Seconds()*commandRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// OnPublishDropped counts a message the broker could not queue for a
// slow subscriber.
func (g *brokerGuard) OnPublishDropped(cl *mochi.Client, _ packets.Packet) {
	g.refused.Add("delivery dropped: subscriber too slow")
}

// isCommandTopic: root + "cmd/" + a verb of one or two levels, no
// wildcard, not a reply.
func isCommandTopic(root, topic string) bool {
	verb, ok := strings.CutPrefix(topic, root+"cmd/")
	if !ok || verb == "" || strings.ContainsAny(verb, "+#") {
		return false
	}
	levels := strings.Split(verb, "/")
	if len(levels) > 2 || levels[len(levels)-1] == "reply" {
		return false
	}
	for _, l := range levels {
		if l == "" {
			return false
		}
	}
	return true
}

// covers reports whether every topic matching filter also matches
// pattern (both MQTT filters; pattern's wildcards are + only).
func covers(pattern, filter string) bool {
	p, f := strings.Split(pattern, "/"), strings.Split(filter, "/")
	if len(p) != len(f) {
		return false
	}
	for i := range p {
		switch {
		case f[i] == "#":
			return false
		case p[i] == "+":
		case f[i] == "+" || f[i] != p[i]:
			return false
		}
	}
	return true
}

// Refusals counts refused requests by reason and logs them once per
// burst: the first refusal starts a burst, which is logged (count and
// reasons) 5 s later in one line, however many came. A flood of junk
// makes one line, not one per message.
type Refusals struct {
	log  zerolog.Logger
	what string

	mu    sync.Mutex
	total uint64
	burst map[string]int
}

// maxReasons bounds the reasons kept per burst (the rest are "other").
const maxReasons = 8

// RefusalBurst is how long a burst of refusals is collected before its
// log line.
var RefusalBurst = 5 * time.Second

// NewRefusals counts refusals of what (the log line's message).
func NewRefusals(log zerolog.Logger, what string) *Refusals {
	return &Refusals{log: log, what: what}
}

// Add counts one refusal.
func (r *Refusals) Add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if r.burst == nil {
		r.burst = map[string]int{}
		time.AfterFunc(RefusalBurst, r.flush)
	}
	if _, ok := r.burst[reason]; !ok && len(r.burst) >= maxReasons {
		reason = "other"
	}
	r.burst[reason]++
}

// Total is the number of refusals counted.
func (r *Refusals) Total() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

func (r *Refusals) flush() {
	r.mu.Lock()
	burst, total := r.burst, r.total
	r.burst = nil
	r.mu.Unlock()
	n := 0
	for c := range maps.Values(burst) {
		n += c
	}
	d := zerolog.Dict()
	for k, v := range burst {
		d = d.Int(k, v)
	}
	r.log.Warn().Int("count", n).Uint64("total", total).Dict("reasons", d).Msg(r.what)
}
