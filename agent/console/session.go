package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"velo/agent/config"
)

// cookieName is the session cookie: Secure, HttpOnly, SameSite=Strict.
const cookieName = "velo_console"

// maxAnonymous bounds the anonymous sessions kept (login page), and
// maxLoggedIn the logged-in ones, each on its own: anonymous requests
// never push out a logged-in session. The oldest of the kind goes first.
const (
	maxAnonymous = 256
	maxLoggedIn  = 64
)

// session is a browser's session: anonymous (login page, with its CSRF
// token) until a login, which replaces it with a new one (new id, new
// token: no fixation).
type session struct {
	id, csrf string
	op       *config.OperatorConfig // nil: not logged in
	created  time.Time
	expires  time.Time
	comm     *commissioning // open commissioning session, if any
}

// commissioning is an open commissioning session: the only place the
// console shows an unmasked still (of Camera, until Until).
type commissioning struct {
	Camera string    `json:"camera"`
	Reason string    `json:"reason"`
	Opened time.Time `json:"opened"`
	Until  time.Time `json:"until"`
}

type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	if ttl <= 0 {
		ttl = config.DefaultConsoleSessionTTL
	}
	return &sessions{ttl: ttl, now: now, m: map[string]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// get returns the live session of r's cookie (a copy), or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil {
		return nil
	}
	if !ss.now().Before(s.expires) {
		if s.comm == nil { // an open commissioning is closed (and audited) by the sweep
			delete(ss.m, s.id)
		}
		return nil
	}
	cp := *s
	return &cp
}

// create starts a session (for op, or anonymous) and sets its cookie.
// It returns the logged-in session evicted to make room, if any (only a
// login evicts one, the oldest logged-in session).
func (ss *sessions) create(w http.ResponseWriter, op *config.OperatorConfig) (*session, *session) {
	now := ss.now()
	ttl := ss.ttl
	if op == nil {
		ttl = 15 * time.Minute // long enough to type a password
	}
	s := &session{id: randomToken(), csrf: randomToken(), op: op, created: now, expires: now.Add(ttl)}
	ss.mu.Lock()
	for id, o := range ss.m {
		if !now.Before(o.expires) && o.comm == nil {
			delete(ss.m, id)
		}
	}
	limit := maxAnonymous
	if op != nil {
		limit = maxLoggedIn
	}
	var evicted *session
	for ss.count(op != nil) >= limit {
		evicted = ss.evictOldest(op != nil)
	}
	ss.m[s.id] = s
	ss.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.id, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: s.expires})
	cp := *s
	if op == nil {
		evicted = nil
	}
	return &cp, evicted
}

// count is how many sessions of the kind (logged in or not) are kept
// (ss.mu held).
func (ss *sessions) count(loggedIn bool) int {
	n := 0
	for _, o := range ss.m {
		if (o.op != nil) == loggedIn {
			n++
		}
	}
	return n
}

// evictOldest removes the oldest session of the kind and returns it
// (ss.mu held).
func (ss *sessions) evictOldest(loggedIn bool) *session {
	var oldest *session
	for _, o := range ss.m {
		if (o.op != nil) == loggedIn && (oldest == nil || o.created.Before(oldest.created)) {
			oldest = o
		}
	}
	delete(ss.m, oldest.id)
	return oldest
}

// drop ends a session and returns it (nil: there was none); the caller
// closes its commissioning (Server.dropSession).
func (ss *sessions) drop(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	delete(ss.m, id)
	return s
}

// takeCommissioning closes session id's commissioning and returns it (nil:
// none was open), once: two paths closing it report it once.
func (ss *sessions) takeCommissioning(id string) *commissioning {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil || s.comm == nil {
		return nil
	}
	c := s.comm
	s.comm = nil
	return c
}

// commissioned returns a copy of every logged-in session with an open
// commissioning, expired sessions included (the sweep closes them).
func (ss *sessions) commissioned() []session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []session
	for _, s := range ss.m {
		if s.op != nil && s.comm != nil {
			out = append(out, *s)
		}
	}
	return out
}

// openCommissioning returns session id's commissioning of camera if the
// session is live and the commissioning open at now (nil otherwise): what
// a request acts on is read again when it acts, not when it arrived.
func (ss *sessions) openCommissioning(id, camera string) *commissioning {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	now := ss.now()
	if s == nil || s.op == nil || !now.Before(s.expires) || s.comm == nil || s.comm.Camera != camera || !now.Before(s.comm.Until) {
		return nil
	}
	c := *s.comm
	return &c
}

// alive reports whether session id exists and has not expired.
func (ss *sessions) alive(id string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	return s != nil && ss.now().Before(s.expires)
}

// setCommissioning opens (c) or closes (nil) a session's commissioning.
func (ss *sessions) setCommissioning(id string, c *commissioning) {
	ss.mu.Lock()
	if s := ss.m[id]; s != nil {
		s.comm = c
	}
	ss.mu.Unlock()
}

// csrfOK: the request carries the session's CSRF token in X-CSRF-Token.
func (s *session) csrfOK(r *http.Request) bool {
	got := r.Header.Get("X-CSRF-Token")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// throttle slows down wrong logins per source: after freeFailures within
// a quarter of an hour, each further attempt waits out a pause that
// doubles up to maxPause, and is refused unchecked (429) until then. At
// most maxTracked sources are kept; the stalest is forgotten first.
//
// A source has one login checked at a time (begin/end: another is refused,
// 429, while one is pending, so parallel requests do not all pass before
// the first failure counts), and at most maxChecks password checks run at
// once in all (check).
type throttle struct {
	now     func() time.Time
	mu      sync.Mutex
	m       map[string]*failures
	pending map[string]bool
	checks  chan struct{}
}

// maxChecks bounds the password checks (a slow key derivation) at once.
const maxChecks = 2

type failures struct {
	n           int
	last, until time.Time
}

const (
	freeFailures = 5
	maxPause     = 5 * time.Minute
	maxTracked   = 1024
	failWindow   = 15 * time.Minute
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, m: map[string]*failures{}, pending: map[string]bool{}, checks: make(chan struct{}, maxChecks)}
}

// begin reserves source's login slot; false: one is pending.
func (t *throttle) begin(source string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[source] {
		return false
	}
	t.pending[source] = true
	return true
}

// end frees source's login slot.
func (t *throttle) end(source string) {
	t.mu.Lock()
	delete(t.pending, source)
	t.mu.Unlock()
}

// check runs f as one of at most maxChecks password checks at once, or
// returns ctx's error when it ends first.
func (t *throttle) check(ctx context.Context, f func()) error {
	select {
	case t.checks <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.checks }()
	f()
	return nil
}

// wait is how long source must still wait before a login is checked.
func (t *throttle) wait(source string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[source]
	if f == nil {
		return 0
	}
	return max(f.until.Sub(t.now()), 0)
}

// fail records a wrong login from source.
func (t *throttle) fail(source string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[source]
	if f == nil || now.Sub(f.last) > failWindow {
		if f == nil && len(t.m) >= maxTracked {
			t.evictLocked()
		}
		f = &failures{}
		t.m[source] = f
	}
	f.n++
	f.last = now
	if f.n > freeFailures {
		pause := min(time.Second<<min(f.n-freeFailures-1, 16), maxPause)
		f.until = now.Add(pause)
	}
}

// ok forgets source's failures (a right login).
func (t *throttle) ok(source string) {
	t.mu.Lock()
	delete(t.m, source)
	t.mu.Unlock()
}

func (t *throttle) evictLocked() {
	var stalest string
	var at time.Time
	for k, f := range t.m {
		if stalest == "" || f.last.Before(at) {
			stalest, at = k, f.last
		}
	}
	delete(t.m, stalest)
}

// tracked is how many sources are kept (tests).
func (t *throttle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
