package camsim

import (
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Events service (CameraConfig.Events): PullPoint subscriptions that
// receive a message whenever the PTZ motor starts or stops, whatever moved
// it (GotoPreset, AbsoluteMove, Stop, limits, a Tamper hand move).
//
// Topics published:
//   - tns1:PTZController/tnssim:Move — modelled on Axis's tnsaxis:Move:
//     Source PTZConfigurationToken, Data is_moving "1"/"0" and an
//     ElementItem "Position" (start: where the motor is; stop: where it
//     stopped).
//   - tns1:PTZController/PTZPresets/Left when a move starts on a preset's
//     position, PTZPresets/Reached when it stops on one (ONVIF PTZ topics;
//     Data PresetToken).
//
// With the events_move_only quirk only the Move topic is published, without
// position (as Axis firmware does).

const (
	nsEvents   = "http://www.onvif.org/ver10/events/wsdl"
	nsWSNT     = "http://docs.oasis-open.org/wsn/b-2"
	nsWSA10    = "http://www.w3.org/2005/08/addressing"
	nsTopics   = "http://www.onvif.org/ver10/topics"
	nsSimTopic = "urn:velo:camsim:topics"

	subPathPrefix = "/onvif/events/subscription/"
	// maxSubscriptions per camera (real cameras allow a handful).
	maxSubscriptions = 10
	// maxQueued messages per subscription; older ones are dropped.
	maxQueued = 256
	// maxPullWait caps a PullMessages wait below the HTTP write timeout.
	maxPullWait = 8 * time.Second
)

// eventHub is the camera's Events state, guarded by Camera.mu.
type eventHub struct {
	subs   map[string]*pullPoint
	nextID int
	// moving is true between a start message and its stop; stopAt is when
	// the motor reaches its target (the stop message is made then, lazily).
	moving bool
	stopAt time.Time
}

type pullPoint struct {
	id      string
	expires time.Time
	queue   []simEvent
	wake    chan struct{} // capacity 1: a message was queued
}

type simEvent struct {
	at     time.Time
	topic  string
	source [][2]string
	data   [][2]string
	pos    *Position
}

// eventArgs is the Events requests' model (local names).
type eventArgs struct {
	Topic       string `xml:"Filter>TopicExpression"`
	Termination string `xml:"InitialTerminationTime"`
	Renew       string `xml:"TerminationTime"`
	Timeout     string `xml:"Timeout"`
	Limit       int    `xml:"MessageLimit"`
}

// motionLocked records a motor change made by moveLocked: a start message
// when the motor starts, a stop when it is stopped short (Stop); the stop
// at the target is made when due.
func (c *Camera) motionLocked(cur Position, now time.Time) {
	if !c.cfg.Events {
		return
	}
	c.flushMotionLocked(now)
	moving := cur != c.target
	switch {
	case moving && !c.ev.moving:
		c.ev.moving = true
		c.emitMoveLocked(now, true, cur)
	case !moving && c.ev.moving:
		c.ev.moving = false
		c.emitMoveLocked(now, false, cur)
	}
	if moving {
		c.ev.stopAt = c.arrivalLocked(cur)
	}
}

// arrivalLocked is when the motor, now at cur, reaches its target.
func (c *Camera) arrivalLocked(cur Position) time.Time {
	p := c.cfg.PTZ
	secs := math.Max(math.Abs(c.target.Pan-cur.Pan), math.Abs(c.target.Tilt-cur.Tilt)) / p.PanTiltSpeed
	secs = math.Max(secs, math.Abs(c.target.Zoom-cur.Zoom)/p.ZoomSpeed)
	return c.t0.Add(time.Duration(secs * float64(time.Second)))
}

// flushMotionLocked makes the stop message of a move that has ended.
func (c *Camera) flushMotionLocked(now time.Time) {
	if c.ev.moving && !now.Before(c.ev.stopAt) {
		c.ev.moving = false
		c.emitMoveLocked(c.ev.stopAt, false, c.target)
	}
}

func (c *Camera) emitMoveLocked(at time.Time, moving bool, pos Position) {
	src := [][2]string{{"PTZConfigurationToken", ptzCfgTok}}
	flag := "0"
	if moving {
		flag = "1"
	}
	if c.cfg.Quirk.EventsMoveOnly {
		c.emitLocked(simEvent{at: at, topic: "tns1:PTZController/tnssim:Move", source: src, data: [][2]string{{"is_moving", flag}}})
		return
	}
	c.emitLocked(simEvent{at: at, topic: "tns1:PTZController/tnssim:Move", source: src, data: [][2]string{{"is_moving", flag}}, pos: &pos})
	for _, pr := range c.presets {
		if pr.pos == pos {
			topic := "tns1:PTZController/PTZPresets/Reached"
			if moving {
				topic = "tns1:PTZController/PTZPresets/Left"
			}
			c.emitLocked(simEvent{at: at, topic: topic, source: src, data: [][2]string{{"PresetToken", pr.token}}})
		}
	}
}

// emitLocked queues a message on every live subscription.
func (c *Camera) emitLocked(e simEvent) {
	for id, s := range c.ev.subs {
		if e.at.After(s.expires) {
			delete(c.ev.subs, id)
			continue
		}
		if len(s.queue) >= maxQueued {
			s.queue = s.queue[1:]
		}
		s.queue = append(s.queue, e)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// events answers the Events service and its subscriptions.
func (c *Camera) events(action string, a *reqArgs, r *http.Request) (string, *soapError) {
	var ea eventArgs
	if err := xml.Unmarshal([]byte("<a>"+a.Raw+"</a>"), &ea); err != nil {
		return "", fault("ter:InvalidArgs", "malformed request")
	}
	switch action {
	case "GetServiceCapabilities":
		return `<tev:GetServiceCapabilitiesResponse xmlns:tev="` + nsEvents + `"><tev:Capabilities WSSubscriptionPolicySupport="false" ` +
			`WSPausableSubscriptionManagerInterfaceSupport="false" MaxNotificationProducers="0" MaxPullPoints="` +
			strconv.Itoa(maxSubscriptions) + `" PersistentNotificationStorage="false"/></tev:GetServiceCapabilitiesResponse>`, nil
	case "GetEventProperties":
		return eventPropertiesXML, nil
	case "CreatePullPointSubscription":
		return c.createSubscription(ea)
	case "PullMessages":
		return c.pullMessages(r, ea)
	case "Renew":
		return c.renewSubscription(r, ea)
	case "Unsubscribe":
		return c.unsubscribe(r)
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

// eventsServiceXML is the Events entry of GetServices ("" without events).
func (c *Camera) eventsServiceXML() string {
	if !c.cfg.Events {
		return ""
	}
	return `<tds:Service><tds:Namespace>` + nsEvents + `</tds:Namespace><tds:XAddr>` + c.svc("event_service") + `</tds:XAddr>` +
		`<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>`
}

// eventsCapabilityXML is the Events entry of GetCapabilities ("" without
// events).
func (c *Camera) eventsCapabilityXML() string {
	if !c.cfg.Events {
		return ""
	}
	return `<tt:Events><tt:XAddr>` + c.svc("event_service") + `</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>` +
		`<tt:WSPullPointSupport>true</tt:WSPullPointSupport><tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>`
}

const eventPropertiesXML = `<tev:GetEventPropertiesResponse xmlns:tev="` + nsEvents + `" xmlns:wsnt="` + nsWSNT +
	`" xmlns:wstop="http://docs.oasis-open.org/wsn/t-1" xmlns:tns1="` + nsTopics + `" xmlns:tnssim="` + nsSimTopic + `">` +
	`<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation>` +
	`<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet>` +
	`<wstop:TopicSet><tns1:PTZController><tnssim:Move wstop:topic="true"/>` +
	`<PTZPresets><Left wstop:topic="true"/><Reached wstop:topic="true"/></PTZPresets></tns1:PTZController></wstop:TopicSet>` +
	`<wsnt:TopicExpressionDialect>http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet</wsnt:TopicExpressionDialect>` +
	`<wsnt:TopicExpressionDialect>http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete</wsnt:TopicExpressionDialect>` +
	`<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter</tev:MessageContentFilterDialect>` +
	`<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd</tev:MessageContentSchemaLocation>` +
	`</tev:GetEventPropertiesResponse>`

// parseXSDuration reads a relative xs:duration of the PTnHnMnS form (what
// clients send); ok is false for anything else.
func parseXSDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "PT") {
		return 0, false
	}
	d, err := time.ParseDuration(strings.ToLower(s[2:]))
	return d, err == nil && d > 0
}

func (c *Camera) createSubscription(ea eventArgs) (string, *soapError) {
	if t := strings.TrimSpace(ea.Topic); t != "" {
		if !strings.HasPrefix(t, "tns1:PTZController") {
			return "", fault("wsntw:InvalidFilterFault", "only tns1:PTZController topics are published")
		}
	}
	term := time.Minute
	if ea.Termination != "" {
		d, ok := parseXSDuration(ea.Termination)
		if !ok {
			return "", fault("wsntw:UnacceptableInitialTerminationTimeFault", "want a relative PTnS duration")
		}
		term = d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.expireLocked(now)
	if c.ev.subs == nil {
		c.ev.subs = map[string]*pullPoint{}
	}
	if len(c.ev.subs) >= maxSubscriptions {
		return "", fault("wsntw:SubscribeCreationFailedFault", "too many subscriptions")
	}
	c.ev.nextID++
	id := strconv.Itoa(c.ev.nextID)
	c.ev.subs[id] = &pullPoint{id: id, expires: now.Add(term), wake: make(chan struct{}, 1)}
	return `<tev:CreatePullPointSubscriptionResponse xmlns:tev="` + nsEvents + `" xmlns:wsnt="` + nsWSNT + `" xmlns:wsa="` + nsWSA10 + `">` +
		`<tev:SubscriptionReference><wsa:Address>http://` + c.xaddrHost() + subPathPrefix + id + `</wsa:Address></tev:SubscriptionReference>` +
		`<wsnt:CurrentTime>` + xsTime(c.clockLocked(now)) + `</wsnt:CurrentTime>` +
		`<wsnt:TerminationTime>` + xsTime(c.clockLocked(now.Add(term))) + `</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>`, nil
}

func xsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (c *Camera) expireLocked(now time.Time) {
	for id, s := range c.ev.subs {
		if now.After(s.expires) {
			delete(c.ev.subs, id)
		}
	}
}

// subscriptionLocked finds the live subscription a request is addressed to.
func (c *Camera) subscriptionLocked(r *http.Request, now time.Time) (*pullPoint, *soapError) {
	id, ok := strings.CutPrefix(r.URL.Path, subPathPrefix)
	c.expireLocked(now)
	s := c.ev.subs[id]
	if !ok || s == nil {
		return nil, fault("wsrf-rw:ResourceUnknownFault", "no such subscription")
	}
	return s, nil
}

// pullMessages answers at once when messages are queued, else waits for
// one, for a move's end, or for the request's timeout.
func (c *Camera) pullMessages(r *http.Request, ea eventArgs) (string, *soapError) {
	wait, ok := parseXSDuration(ea.Timeout)
	if !ok {
		return "", fault("ter:InvalidArgVal", "Timeout: want a relative PTnS duration")
	}
	deadline := time.Now().Add(min(wait, maxPullWait))
	limit := min(max(ea.Limit, 1), maxQueued)
	for {
		c.mu.Lock()
		now := time.Now()
		s, f := c.subscriptionLocked(r, now)
		if f != nil {
			c.mu.Unlock()
			return "", f
		}
		c.flushMotionLocked(now)
		if len(s.queue) > 0 || !now.Before(deadline) {
			n := min(limit, len(s.queue))
			msgs := s.queue[:n]
			s.queue = append([]simEvent(nil), s.queue[n:]...)
			reply := c.pullReplyLocked(s, msgs, now)
			c.mu.Unlock()
			return reply, nil
		}
		until := deadline
		if c.ev.moving && c.ev.stopAt.Before(until) {
			until = c.ev.stopAt
		}
		wake := s.wake
		c.mu.Unlock()
		t := time.NewTimer(time.Until(until))
		select {
		case <-wake:
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return "", fault("ter:Action", "request cancelled")
		}
		t.Stop()
	}
}

func (c *Camera) pullReplyLocked(s *pullPoint, msgs []simEvent, now time.Time) string {
	var b strings.Builder
	b.WriteString(`<tev:PullMessagesResponse xmlns:tev="` + nsEvents + `" xmlns:wsnt="` + nsWSNT + `" xmlns:wsa="` + nsWSA10 +
		`" xmlns:tns1="` + nsTopics + `" xmlns:tnssim="` + nsSimTopic + `">`)
	b.WriteString(`<tev:CurrentTime>` + xsTime(c.clockLocked(now)) + `</tev:CurrentTime>`)
	b.WriteString(`<tev:TerminationTime>` + xsTime(c.clockLocked(s.expires)) + `</tev:TerminationTime>`)
	items := func(kv [][2]string) string {
		var ib strings.Builder
		for _, p := range kv {
			fmt.Fprintf(&ib, `<tt:SimpleItem Name="%s" Value="%s"/>`, esc(p[0]), esc(p[1]))
		}
		return ib.String()
	}
	for _, e := range msgs {
		b.WriteString(`<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">` + e.topic + `</wsnt:Topic>`)
		b.WriteString(`<wsnt:Message><tt:Message UtcTime="` + xsTime(c.clockLocked(e.at)) + `" PropertyOperation="Changed">`)
		b.WriteString(`<tt:Source>` + items(e.source) + `</tt:Source><tt:Key/><tt:Data>` + items(e.data))
		if e.pos != nil {
			b.WriteString(`<tt:ElementItem Name="Position">` + posXML("tt:PTZVector", *e.pos) + `</tt:ElementItem>`)
		}
		b.WriteString(`</tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>`)
	}
	b.WriteString(`</tev:PullMessagesResponse>`)
	return b.String()
}

func (c *Camera) renewSubscription(r *http.Request, ea eventArgs) (string, *soapError) {
	d, ok := parseXSDuration(ea.Renew)
	if !ok {
		return "", fault("wsntw:UnacceptableTerminationTimeFault", "want a relative PTnS duration")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	s, f := c.subscriptionLocked(r, now)
	if f != nil {
		return "", f
	}
	s.expires = now.Add(d)
	return `<wsnt:RenewResponse xmlns:wsnt="` + nsWSNT + `"><wsnt:TerminationTime>` + xsTime(c.clockLocked(s.expires)) +
		`</wsnt:TerminationTime><wsnt:CurrentTime>` + xsTime(c.clockLocked(now)) + `</wsnt:CurrentTime></wsnt:RenewResponse>`, nil
}

func (c *Camera) unsubscribe(r *http.Request) (string, *soapError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, f := c.subscriptionLocked(r, time.Now())
	if f != nil {
		return "", f
	}
	delete(c.ev.subs, s.id)
	return `<wsnt:UnsubscribeResponse xmlns:wsnt="` + nsWSNT + `"/>`, nil
}

// Subscriptions returns how many PullPoint subscriptions are live.
func (c *Camera) Subscriptions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(time.Now())
	return len(c.ev.subs)
}
