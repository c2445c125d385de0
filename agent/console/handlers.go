package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"velo/agent/access"
	"velo/agent/attempts"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/event"
)

// maxBody bounds a request body (a view's masks fit many times over).
const maxBody = 256 << 10

// Handler is the console's HTTP handler (Run serves it over TLS).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "" || strings.Contains(name, "..") || strings.Contains(name, "\\") || path.Clean("/"+name) != "/"+name || name == "index.html" {
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		files.ServeHTTP(w, r2)
	})
	mux.HandleFunc("GET /api/session", s.handleSession)
	mux.HandleFunc("POST /api/login", s.handleLogin)
	mux.HandleFunc("POST /api/logout", s.authed(s.handleLogout))
	mux.HandleFunc("GET /api/cameras", s.authed(s.handleCameras))
	mux.HandleFunc("GET /api/events", s.authed(s.handleEvents))
	mux.HandleFunc("GET /api/cameras/{id}/snapshot", s.authed(s.camera(s.handleSnapshot)))
	mux.HandleFunc("GET /api/cameras/{id}/still", s.authed(s.camera(s.handleStill)))
	mux.HandleFunc("POST /api/cameras/{id}/preview", s.authed(s.camera(s.handlePreview)))
	mux.HandleFunc("POST /api/cameras/{id}/commissioning", s.authed(s.camera(s.handleCommission)))
	mux.HandleFunc("POST /api/commissioning/close", s.authed(s.handleCommissionClose))
	mux.HandleFunc("POST /api/cameras/{id}/ptz", s.authed(s.camera(s.handlePTZ)))
	mux.HandleFunc("POST /api/cameras/{id}/presets", s.authed(s.camera(s.handleSavePreset)))
	mux.HandleFunc("POST /api/cameras/{id}/proposals", s.authed(s.camera(s.handlePropose)))
	mux.HandleFunc("GET /api/proposals", s.authed(s.handleProposals))
	mux.HandleFunc("POST /api/proposals/{pid}/approve", s.authed(s.handleApprove))
	return securityHeaders(mux)
}

// securityHeaders: no framing, no sniffing, nothing from elsewhere.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// request is a logged-in operator's request.
type request struct {
	sess *session
	op   *config.OperatorConfig
	cam  *config.CameraConfig // set by camera()
}

// authed requires a logged-in session, and its CSRF token on a POST.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessions.get(r)
		if sess == nil || sess.op == nil {
			httpError(w, http.StatusUnauthorized, "not logged in, or the session expired")
			return
		}
		if r.Method != http.MethodGet && !sess.csrfOK(r) {
			s.refuse(sess.op.Name, "", r, "request without its CSRF token")
			httpError(w, http.StatusForbidden, "missing or wrong CSRF token")
			return
		}
		op := s.opts.Gateway.Config().Operator(sess.op.Name) // roles as the config now says
		if op == nil || !consoleRole(op) {
			s.dropSession(sess.id, sess.op.Name, "operator no longer has the installer or admin role")
			httpError(w, http.StatusUnauthorized, "operator no longer allowed on the console")
			return
		}
		h(w, r, &request{sess: sess, op: op})
	}
}

// camera resolves {id}: a configured camera the operator is assigned.
func (s *Server) camera(h func(http.ResponseWriter, *http.Request, *request)) func(http.ResponseWriter, *http.Request, *request) {
	return func(w http.ResponseWriter, r *http.Request, q *request) {
		id := r.PathValue("id")
		cam := s.opts.Gateway.Config().Camera(id)
		if cam == nil {
			httpError(w, http.StatusNotFound, "no camera "+strconv.Quote(audit.Clean(id, 64)))
			return
		}
		if err := q.op.May(access.ActCommission, cam.ID); err != nil {
			s.refuse(q.op.Name, cam.ID, r, err.Error())
			httpError(w, http.StatusForbidden, err.Error())
			return
		}
		q.cam = cam
		h(w, r, q)
	}
}

func consoleRole(op *config.OperatorConfig) bool {
	return op.HasRole(access.RoleInstaller) || op.HasRole(access.RoleAdmin)
}

// refuse reports an action refused to a logged-in operator.
func (s *Server) refuse(op, camera string, r *http.Request, why string) {
	s.opts.Gateway.Emit(event.Event{Kind: event.ConsoleRefused, Operator: op, Camera: camera,
		Detail: fmt.Sprintf("%s %s from %s: %s", r.Method, audit.Clean(r.URL.Path, 128), attempts.Source(r.RemoteAddr), why)})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes a bounded body strictly.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

func writeJPEG(w http.ResponseWriter, jpg []byte) {
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(jpg)
}

// sessionInfo is what the browser learns of its session.
type sessionInfo struct {
	LoggedIn      bool           `json:"logged_in"`
	User          string         `json:"user,omitempty"`
	Roles         []string       `json:"roles,omitempty"`
	CSRF          string         `json:"csrf"`
	Expires       time.Time      `json:"expires"`
	Commissioning *commissioning `json:"commissioning,omitempty"`
	CanApprove    bool           `json:"can_approve"`
}

// handleSession tells the page who is logged in; a browser without a
// session gets an anonymous one, whose CSRF token guards the login.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	sess := s.sessions.get(r)
	if sess == nil {
		sess, _ = s.sessions.create(w, nil)
	}
	info := sessionInfo{CSRF: sess.csrf, Expires: sess.expires}
	if sess.op != nil {
		info.LoggedIn, info.User, info.Roles = true, sess.op.Name, sess.op.Roles
		info.CanApprove = sess.op.HasRole(access.RoleAdmin)
		if c := sess.comm; c != nil && s.opts.Now().Before(c.Until) {
			info.Commissioning = c
		}
	}
	writeJSON(w, http.StatusOK, info)
}

var errNoRole = errors.New("no installer or admin role")

// handleLogin checks the operator's credentials (installer or admin only)
// and starts a new session: new id, new CSRF token (no fixation).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	sess := s.sessions.get(r)
	if sess == nil || !sess.csrfOK(r) {
		httpError(w, http.StatusForbidden, "missing or wrong CSRF token: reload the page")
		return
	}
	var body struct{ User, Password string }
	if !readJSON(w, r, &body) {
		return
	}
	src := attempts.Source(r.RemoteAddr)
	user := audit.Clean(body.User, audit.MaxFieldLen)
	if !s.throttle.begin(src) {
		s.opts.Gateway.LoginRefused(user, r.RemoteAddr, "another login from this address pending")
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusTooManyRequests, "another login from this address is being checked: wait for it")
		return
	}
	defer s.throttle.end(src)
	if d := s.throttle.wait(src); d > 0 {
		s.opts.Gateway.LoginRefused(user, r.RemoteAddr, "throttled")
		w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds()+1)))
		httpError(w, http.StatusTooManyRequests, "too many wrong logins from this address: wait "+d.Round(time.Second).String())
		return
	}
	var op *config.OperatorConfig
	var err error
	if cerr := s.throttle.check(r.Context(), func() { op, err = s.opts.Gateway.Config().Authenticate(body.User, body.Password) }); cerr != nil {
		httpError(w, http.StatusServiceUnavailable, "login not checked: "+cerr.Error())
		return
	}
	if err == nil && !consoleRole(op) {
		err = errNoRole
	}
	if err != nil {
		s.throttle.fail(src)
		why := "wrong user or password"
		if errors.Is(err, errNoRole) {
			why = "no installer or admin role"
		}
		s.opts.Gateway.LoginRefused(user, r.RemoteAddr, why)
		httpError(w, http.StatusUnauthorized, "login refused: wrong user or password, or no installer or admin role")
		return
	}
	s.throttle.ok(src)
	if sess.op != nil {
		s.dropSession(sess.id, sess.op.Name, "logged in again")
	} else {
		s.sessions.drop(sess.id)
	}
	ns, evicted := s.sessions.create(w, op)
	if evicted != nil && evicted.comm != nil {
		s.closedComm(evicted.id, evicted.op.Name, evicted.comm, "session ended: too many logged-in console sessions", true)
	}
	s.opts.Gateway.Emit(event.Event{Kind: event.ConsoleLogin, Operator: op.Name, Detail: "console login from " + src})
	writeJSON(w, http.StatusOK, sessionInfo{LoggedIn: true, User: op.Name, Roles: op.Roles, CSRF: ns.csrf, Expires: ns.expires,
		CanApprove: op.HasRole(access.RoleAdmin)})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, q *request) {
	s.dropSession(q.sess.id, q.op.Name, "logout")
	s.opts.Gateway.Emit(event.Event{Kind: event.ConsoleLogout, Operator: q.op.Name})
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// cameraInfo is a camera as the console lists it.
type cameraInfo struct {
	ID      string      `json:"id"`
	Purpose string      `json:"purpose"`
	PTZ     bool        `json:"ptz"`
	Views   []viewInfo  `json:"views"`
	State   CameraState `json:"state"`
}

type viewInfo struct {
	Preset   string                 `json:"preset"`
	Masks    []Mask                 `json:"masks"`
	Approval *config.ApprovalConfig `json:"approval,omitempty"`
}

func views(cam *config.CameraConfig) []viewInfo {
	if len(cam.Presets) == 0 {
		return []viewInfo{{Masks: consoleMasks(cam.Masks), Approval: cam.Approval}}
	}
	var out []viewInfo
	for _, p := range cam.Presets {
		ap := p.Approval
		out = append(out, viewInfo{Preset: p.Token, Masks: consoleMasks(p.Masks), Approval: &ap})
	}
	return out
}

func (s *Server) handleCameras(w http.ResponseWriter, r *http.Request, q *request) {
	cfg := s.opts.Gateway.Config()
	states := map[string]CameraState{}
	for _, st := range s.opts.Gateway.ConsoleStates() {
		states[st.ID] = st
	}
	out := []cameraInfo{}
	for i := range cfg.Cameras {
		cam := &cfg.Cameras[i]
		if q.op.May(access.ActCommission, cam.ID) != nil {
			continue
		}
		out = append(out, cameraInfo{ID: cam.ID, Purpose: cam.Purpose, PTZ: len(cam.Presets) > 0, Views: views(cam), State: states[cam.ID]})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleEvents streams the cameras' states (server-sent events) while the
// session lasts: one "state" event at once, then one at each change.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, q *request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		httpError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last []byte
	for {
		var mine []CameraState
		for _, st := range s.opts.Gateway.ConsoleStates() {
			if q.op.May(access.ActCommission, st.ID) == nil {
				mine = append(mine, st)
			}
		}
		slices.SortFunc(mine, func(a, b CameraState) int { return strings.Compare(a.ID, b.ID) })
		data, _ := json.Marshal(mine)
		if string(data) != string(last) {
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", data); err != nil {
				return
			}
			fl.Flush()
			last = data
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if !s.stillAllowed(r, q) {
			_, _ = fmt.Fprint(w, "event: expired\ndata: {}\n\n")
			fl.Flush()
			return
		}
	}
}

// stillAllowed: q's session is still live (not expired, not logged out
// or evicted) and its operator still has a console role; q.op is
// refreshed to the operator the config now holds (cameras assigned).
func (s *Server) stillAllowed(r *http.Request, q *request) bool {
	cur := s.sessions.get(r)
	if cur == nil || cur.id != q.sess.id || cur.op == nil {
		return false
	}
	op := s.opts.Gateway.Config().Operator(q.op.Name)
	if op == nil || !consoleRole(op) {
		s.dropSession(cur.id, cur.op.Name, "operator no longer has the installer or admin role")
		return false
	}
	q.op = op
	return true
}
