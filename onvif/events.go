package onvif

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Namespaces and dialects of the Events service (WS-BaseNotification
// PullPoint as profiled by ONVIF).
const (
	NSWSNT   = "http://docs.oasis-open.org/wsn/b-2"
	NSWSA    = "http://www.w3.org/2005/08/addressing"
	NSTopics = "http://www.onvif.org/ver10/topics"
	// TopicDialectConcreteSet is ONVIF's topic expression dialect: "|"
	// joins expressions, "//." selects a topic and all below it.
	TopicDialectConcreteSet = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
)

// TopicsPTZ selects every PTZ controller topic: the standard
// PTZPresets/Invoked|Reached|Aborted|Left and vendor motion topics such as
// Axis's tnsaxis:Move and tnsaxis:PTZPresets.
const TopicsPTZ = "tns1:PTZController//."

const (
	actionCreatePullPoint = NSEvents + "/EventPortType/CreatePullPointSubscriptionRequest"
	actionGetEventProps   = NSEvents + "/EventPortType/GetEventPropertiesRequest"
	actionPullMessages    = NSEvents + "/PullPointSubscription/PullMessagesRequest"
	actionRenew           = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest"
	actionUnsubscribe     = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest"

	// maxMessageLimit bounds the messages asked for (and kept) per pull.
	maxMessageLimit = 1024
	// defaultTermination is the subscription lifetime asked for when the
	// caller gives none.
	defaultTermination = time.Minute
)

// eventsEnvelopeOpen declares the prefixes of Events request bodies and
// headers (tns1 for topic expressions).
const eventsEnvelopeOpen = `<?xml version="1.0" encoding="UTF-8"?>` +
	`<s:Envelope xmlns:s="` + NSSoap + `" xmlns:tev="` + NSEvents + `" xmlns:wsnt="` + NSWSNT +
	`" xmlns:wsa="` + NSWSA + `" xmlns:tns1="` + NSTopics + `" xmlns:tt="` + NSSchema + `">`

// SimpleItem is tt:SimpleItem: a named value of an event's Source, Key or
// Data.
type SimpleItem struct {
	Name  string `xml:"Name,attr" json:"name"`
	Value string `xml:"Value,attr" json:"value"`
}

// ElementItem is tt:ElementItem. Vector is set when its content is a PTZ
// vector (PanTilt/Zoom children, whatever the element is called).
type ElementItem struct {
	Name   string     `xml:"Name,attr" json:"name"`
	Vector *PTZVector `xml:",any" json:"vector,omitempty"`
}

// ItemList is tt:ItemList (an event's Source, Key or Data).
type ItemList struct {
	Simple  []SimpleItem  `xml:"SimpleItem" json:"simple,omitempty"`
	Element []ElementItem `xml:"ElementItem" json:"element,omitempty"`
}

// Value returns the value of the simple item name ("", false if absent).
func (l ItemList) Value(name string) (string, bool) {
	for _, it := range l.Simple {
		if it.Name == name {
			return strings.TrimSpace(it.Value), true
		}
	}
	return "", false
}

// Vector returns the first element item that carries a PTZ vector.
func (l ItemList) Vector() (*PTZVector, bool) {
	for _, it := range l.Element {
		if it.Vector != nil && (it.Vector.PanTilt != nil || it.Vector.Zoom != nil) {
			return it.Vector, true
		}
	}
	return nil, false
}

// NotificationMessage is one wsnt:NotificationMessage with its tt:Message.
type NotificationMessage struct {
	// Topic is the topic expression as sent (prefixes as the camera chose).
	Topic   string `json:"topic"`
	Dialect string `json:"dialect,omitempty"`
	// UtcTime is the camera's time of the event (camera clock).
	UtcTime time.Time `json:"utc_time"`
	// PropertyOperation is Initialized, Changed or Deleted for property
	// events, "" otherwise.
	PropertyOperation string   `json:"property_operation,omitempty"`
	Source            ItemList `json:"source"`
	Key               ItemList `json:"key"`
	Data              ItemList `json:"data"`
}

// TopicPath is the topic without namespace prefixes, e.g.
// "PTZController/Move/Channel_1" for "tns1:PTZController/tnsaxis:Move/Channel_1",
// so topics compare whatever prefixes a camera uses.
func (m NotificationMessage) TopicPath() string {
	parts := strings.Split(strings.TrimSpace(m.Topic), "/")
	for i, p := range parts {
		parts[i] = localName(p)
	}
	return strings.Join(parts, "/")
}

// wireNotification is the wire shape of a NotificationMessage (local names).
type wireNotification struct {
	Topic struct {
		Dialect string `xml:"Dialect,attr"`
		Value   string `xml:",chardata"`
	} `xml:"Topic"`
	Message struct {
		UtcTime string   `xml:"UtcTime,attr"`
		PropOp  string   `xml:"PropertyOperation,attr"`
		Source  ItemList `xml:"Source"`
		Key     ItemList `xml:"Key"`
		Data    ItemList `xml:"Data"`
	} `xml:"Message>Message"`
}

func (w wireNotification) message() NotificationMessage {
	m := NotificationMessage{Topic: strings.TrimSpace(w.Topic.Value), Dialect: strings.TrimSpace(w.Topic.Dialect),
		PropertyOperation: strings.TrimSpace(w.Message.PropOp), Source: w.Message.Source, Key: w.Message.Key, Data: w.Message.Data}
	m.UtcTime, _ = parseXSDateTime(w.Message.UtcTime)
	return m
}

func parseXSDateTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// xsDuration formats d as a relative xs:duration (PT<seconds>S), rounded up
// to whole seconds.
func xsDuration(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("PT%dS", max(secs, 1))
}

// EventProperties is what GetEventProperties says of the camera's events.
type EventProperties struct {
	// Topics are the topic paths the camera publishes (prefixes removed,
	// e.g. "PTZController/PTZPresets/Reached").
	Topics        []string `json:"topics"`
	FixedTopicSet bool     `json:"fixed_topic_set"`
	// Dialects are the topic expression dialects the camera accepts.
	Dialects []string `json:"dialects"`
}

// GetEventProperties lists the topics the camera publishes and the filter
// dialects it accepts (optional: cameras may publish topics they do not
// list).
func (c *Client) GetEventProperties(ctx context.Context) (EventProperties, error) {
	var r struct {
		FixedTopicSet bool     `xml:"FixedTopicSet"`
		Dialects      []string `xml:"TopicExpressionDialect"`
		TopicSet      *rawNode `xml:"TopicSet"`
	}
	err := c.callEvents(ctx, "", actionGetEventProps, nil, struct {
		XMLName struct{} `xml:"tev:GetEventProperties"`
	}{}, "GetEventPropertiesResponse", &r)
	if err != nil {
		return EventProperties{}, c.wrap("GetEventProperties", err)
	}
	p := EventProperties{FixedTopicSet: r.FixedTopicSet}
	for _, d := range r.Dialects {
		p.Dialects = append(p.Dialects, strings.TrimSpace(d))
	}
	if r.TopicSet != nil {
		for _, ch := range r.TopicSet.Children {
			if ch.Node != nil {
				p.Topics = topicPaths(ch.Node, "", p.Topics)
			}
		}
	}
	return p, nil
}

// topicPaths appends the paths of the topics in the subtree n (elements
// marked wstop:topic="true"; message descriptions are not topics).
func topicPaths(n *rawNode, prefix string, out []string) []string {
	if n.Name.Local == "MessageDescription" {
		return out
	}
	path := prefix + n.Name.Local
	for _, a := range n.Attr {
		if a.Name.Local == "topic" && strings.TrimSpace(a.Value) == "true" {
			out = append(out, path)
		}
	}
	for _, ch := range n.Children {
		if ch.Node != nil {
			out = topicPaths(ch.Node, path+"/", out)
		}
	}
	return out
}

// SubscriptionOptions configures CreatePullPointSubscription.
type SubscriptionOptions struct {
	// Topics is a topic expression in the ConcreteSet dialect (e.g.
	// TopicsPTZ); "" subscribes to every topic.
	Topics string
	// Termination is the lifetime asked for; Renew extends it. Default 1 min.
	Termination time.Duration
}

// Subscription is a PullPoint subscription on a camera. Its methods may be
// called from one goroutine at a time.
type Subscription struct {
	c *Client
	// addr is where requests go (host rewritten like service XAddrs);
	// to is the address the camera gave, sent as wsa:To.
	addr, to string
	// refParams are the reference parameters the camera asked to be
	// echoed as SOAP headers (Axis: SubscriptionId).
	refParams []*rawNode
	// Termination is the termination time the camera last reported (camera
	// clock).
	Termination time.Time
}

// subscriptionReference is wsa:EndpointReferenceType on local names.
type subscriptionReference struct {
	Address   string `xml:"Address"`
	RefParams *struct {
		Children []*rawNode `xml:",any"`
	} `xml:"ReferenceParameters"`
}

// CreatePullPointSubscription subscribes to the camera's events. A camera
// that refuses the topic filter (InvalidFilterFault,
// TopicExpressionDialectUnknownFault, TopicNotSupportedFault) is asked again
// without one: filter messages by TopicPath then.
func (c *Client) CreatePullPointSubscription(ctx context.Context, opt SubscriptionOptions) (*Subscription, error) {
	if opt.Termination <= 0 {
		opt.Termination = defaultTermination
	}
	s, err := c.createPullPoint(ctx, opt)
	var fe *FaultError
	if opt.Topics != "" && errors.As(err, &fe) && refusesFilter(fe) {
		opt.Topics = ""
		s, err = c.createPullPoint(ctx, opt)
	}
	if err != nil {
		return nil, c.wrap("CreatePullPointSubscription", err)
	}
	return s, nil
}

func refusesFilter(fe *FaultError) bool {
	for _, sc := range fe.Subcodes {
		switch sc {
		case "InvalidFilterFault", "TopicExpressionDialectUnknownFault", "TopicNotSupportedFault", "InvalidTopicExpressionFault":
			return true
		}
	}
	return false
}

func (c *Client) createPullPoint(ctx context.Context, opt SubscriptionOptions) (*Subscription, error) {
	type topicExpr struct {
		Dialect string `xml:"Dialect,attr"`
		Value   string `xml:",chardata"`
	}
	type filter struct {
		Topic topicExpr `xml:"wsnt:TopicExpression"`
	}
	req := struct {
		XMLName     struct{} `xml:"tev:CreatePullPointSubscription"`
		Filter      *filter  `xml:"tev:Filter,omitempty"`
		Termination string   `xml:"tev:InitialTerminationTime"`
	}{Termination: xsDuration(opt.Termination)}
	if opt.Topics != "" {
		req.Filter = &filter{Topic: topicExpr{Dialect: TopicDialectConcreteSet, Value: opt.Topics}}
	}
	var r struct {
		Ref         subscriptionReference `xml:"SubscriptionReference"`
		Termination string                `xml:"TerminationTime"`
	}
	if err := c.callEvents(ctx, "", actionCreatePullPoint, nil, req, "CreatePullPointSubscriptionResponse", &r); err != nil {
		return nil, err
	}
	to := strings.TrimSpace(r.Ref.Address)
	if to == "" {
		return nil, fmt.Errorf("%w: no SubscriptionReference address", ErrMalformed)
	}
	s := &Subscription{c: c, to: to, addr: c.fixXAddr(to)}
	if r.Ref.RefParams != nil {
		s.refParams = r.Ref.RefParams.Children
	}
	s.Termination, _ = parseXSDateTime(r.Termination)
	return s, nil
}

// Address returns the subscription's address (as requests use it; no
// credentials).
func (s *Subscription) Address() string { return RedactURL(s.addr) }

// PullResult is one PullMessages answer.
type PullResult struct {
	Messages []NotificationMessage
	// Termination is the subscription's termination time (camera clock;
	// zero when the camera did not say).
	Termination time.Time
}

// PullMessages waits up to timeout for at most limit messages (the camera
// answers as soon as it has any). timeout is capped below the client's call
// timeout so the camera's answer is not cut; limit is clamped to 1..1024.
func (s *Subscription) PullMessages(ctx context.Context, timeout time.Duration, limit int) (PullResult, error) {
	timeout = min(max(timeout, time.Second), s.c.cfg.Timeout*3/4)
	limit = min(max(limit, 1), maxMessageLimit)
	var r struct {
		Termination string             `xml:"TerminationTime"`
		Messages    []wireNotification `xml:"NotificationMessage"`
	}
	err := s.c.callEvents(ctx, s.addr, actionPullMessages, s.headers(actionPullMessages), struct {
		XMLName      struct{} `xml:"tev:PullMessages"`
		Timeout      string   `xml:"tev:Timeout"`
		MessageLimit int      `xml:"tev:MessageLimit"`
	}{Timeout: xsDuration(timeout), MessageLimit: limit}, "PullMessagesResponse", &r)
	if err != nil {
		return PullResult{}, s.c.wrap("PullMessages", err)
	}
	res := PullResult{Messages: make([]NotificationMessage, 0, min(len(r.Messages), limit))}
	for i, w := range r.Messages {
		if i >= limit {
			break
		}
		res.Messages = append(res.Messages, w.message())
	}
	if t, ok := parseXSDateTime(r.Termination); ok {
		res.Termination, s.Termination = t, t
	}
	return res, nil
}

// Renew extends the subscription by d from now (camera clock) and returns
// the new termination time the camera reports.
func (s *Subscription) Renew(ctx context.Context, d time.Duration) (time.Time, error) {
	var r struct {
		Termination string `xml:"TerminationTime"`
	}
	err := s.c.callEvents(ctx, s.addr, actionRenew, s.headers(actionRenew), struct {
		XMLName     struct{} `xml:"wsnt:Renew"`
		Termination string   `xml:"wsnt:TerminationTime"`
	}{Termination: xsDuration(d)}, "RenewResponse", &r)
	if err != nil {
		return time.Time{}, s.c.wrap("Renew", err)
	}
	t, _ := parseXSDateTime(r.Termination)
	s.Termination = t
	return t, nil
}

// Unsubscribe ends the subscription.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	err := s.c.callEvents(ctx, s.addr, actionUnsubscribe, s.headers(actionUnsubscribe), struct {
		XMLName struct{} `xml:"wsnt:Unsubscribe"`
	}{}, "UnsubscribeResponse", nil)
	if err != nil {
		return s.c.wrap("Unsubscribe", err)
	}
	return nil
}

// headers are the WS-Addressing headers of a request to the subscription:
// Action, To and the reference parameters the camera gave, each marked
// wsa:IsReferenceParameter (WS-Addressing SOAP binding; Axis refuses a pull
// without its SubscriptionId: firmware-notes/axis.md).
func (s *Subscription) headers(action string) []byte {
	var b bytes.Buffer
	b.WriteString(`<wsa:Action>`)
	_ = escapeText(&b, action)
	b.WriteString(`</wsa:Action><wsa:To>`)
	_ = escapeText(&b, s.to)
	b.WriteString(`</wsa:To>`)
	enc := xml.NewEncoder(&b)
	for _, p := range s.refParams {
		isRef := xml.Attr{Name: xml.Name{Local: "wsa:IsReferenceParameter"}, Value: "true"}
		if err := p.MarshalXML(enc, xml.StartElement{Name: p.Name, Attr: []xml.Attr{isRef}}); err != nil {
			break
		}
	}
	_ = enc.Flush()
	return b.Bytes()
}

// callEvents performs one Events request to addr ("" = the Events
// service), with extra SOAP headers, signed like every call (and re-synced
// once on NotAuthorized).
func (c *Client) callEvents(ctx context.Context, addr, action string, extra []byte, req any, wantLocal string, out any) error {
	if addr == "" {
		a, err := c.serviceAddr(NSEvents)
		if err != nil {
			return err
		}
		addr = a
	}
	err := c.doEvents(ctx, addr, action, extra, req, wantLocal, out)
	if c.creds && errors.Is(err, ErrUnauthorized) && ctx.Err() == nil {
		if serr := c.SyncTime(ctx); serr == nil {
			err = c.doEvents(ctx, addr, action, extra, req, wantLocal, out)
		}
	}
	return err
}

// doEvents is Client.do with the Events envelope and extra headers.
func (c *Client) doEvents(ctx context.Context, addr, action string, extra []byte, req any, wantLocal string, out any) error {
	var head bytes.Buffer
	if c.creds {
		h, err := c.wsseHeader()
		if err != nil {
			return err
		}
		head.Write(h)
	}
	head.Write(extra)
	var b bytes.Buffer
	b.WriteString(eventsEnvelopeOpen)
	if head.Len() > 0 {
		b.WriteString("<s:Header>")
		b.Write(head.Bytes())
		b.WriteString("</s:Header>")
	}
	b.WriteString("<s:Body>")
	if err := xml.NewEncoder(&b).Encode(req); err != nil {
		return fmt.Errorf("encode body: %w", err)
	}
	b.WriteString("</s:Body></s:Envelope>")
	status, data, err := c.post(ctx, addr, action, b.Bytes(), c.creds)
	if err != nil {
		return err
	}
	return replyError(decodeEnvelope(data, action, wantLocal, status, out), status)
}
