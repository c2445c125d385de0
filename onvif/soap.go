package onvif

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Namespace URIs used on the wire.
const (
	NSSoap    = "http://www.w3.org/2003/05/soap-envelope"
	NSDevice  = "http://www.onvif.org/ver10/device/wsdl"
	NSMedia   = "http://www.onvif.org/ver10/media/wsdl"
	NSMedia2  = "http://www.onvif.org/ver20/media/wsdl"
	NSPTZ     = "http://www.onvif.org/ver20/ptz/wsdl"
	NSSchema  = "http://www.onvif.org/ver10/schema"
	NSEvents  = "http://www.onvif.org/ver10/events/wsdl"
	NSImaging = "http://www.onvif.org/ver20/imaging/wsdl"
	NSWsse    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NSWsu     = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	NSError   = "http://www.onvif.org/ver10/error"

	pwDigestType = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	nonceEncType = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// envelopeOpen declares every prefix our request bodies use, so bodies can be
// marshalled with qualified names such as `xml:"tptz:GotoPreset"`.
const envelopeOpen = `<?xml version="1.0" encoding="UTF-8"?>` +
	`<s:Envelope xmlns:s="` + NSSoap + `" xmlns:tds="` + NSDevice + `" xmlns:trt="` + NSMedia +
	`" xmlns:tr2="` + NSMedia2 + `" xmlns:tptz="` + NSPTZ + `" xmlns:tt="` + NSSchema + `">`

// buildEnvelope returns a SOAP 1.2 envelope with an optional header (already
// serialised) and the marshalled body.
func buildEnvelope(header []byte, body any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(envelopeOpen)
	if len(header) > 0 {
		b.WriteString("<s:Header>")
		b.Write(header)
		b.WriteString("</s:Header>")
	}
	b.WriteString("<s:Body>")
	if body != nil {
		if err := xml.NewEncoder(&b).Encode(body); err != nil {
			return nil, fmt.Errorf("encode body: %w", err)
		}
	}
	b.WriteString("</s:Body></s:Envelope>")
	return b.Bytes(), nil
}

// soapFault decodes SOAP 1.2 (Code/Subcode/Value, Reason/Text) and SOAP 1.1
// (faultcode/faultstring) faults on local names.
type soapFault struct {
	Code struct {
		Value   string      `xml:"Value"`
		Subcode *faultSubcd `xml:"Subcode"`
	} `xml:"Code"`
	Reason struct {
		Text []string `xml:"Text"`
	} `xml:"Reason"`
	FaultCode   string `xml:"faultcode"`
	FaultString string `xml:"faultstring"`
}

type faultSubcd struct {
	Value   string      `xml:"Value"`
	Subcode *faultSubcd `xml:"Subcode"`
}

func localName(qname string) string {
	qname = strings.TrimSpace(qname)
	if i := strings.LastIndexByte(qname, ':'); i >= 0 {
		return qname[i+1:]
	}
	return qname
}

func (f *soapFault) toError(action string, status int) *FaultError {
	e := &FaultError{Action: action, HTTPStatus: status}
	e.Code = localName(f.Code.Value)
	if e.Code == "" {
		e.Code = localName(f.FaultCode)
	}
	for sc, depth := f.Code.Subcode, 0; sc != nil && depth < 8; sc, depth = sc.Subcode, depth+1 {
		if v := localName(sc.Value); v != "" {
			e.Subcodes = append(e.Subcodes, v)
		}
	}
	reason := f.FaultString
	if len(f.Reason.Text) > 0 {
		reason = f.Reason.Text[0]
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	e.Reason = reason
	return e
}

// maxDepth bounds element nesting in a reply; ONVIF replies are shallow.
const maxDepth = 64

// decodeEnvelope reads a SOAP envelope from data, rejects DOCTYPEs and
// excessive nesting, and either decodes the first Body child into out (when
// out is non-nil) or returns the fault it carries. wantLocal, when set, is the
// local name the Body child must have.
func decodeEnvelope(data []byte, action, wantLocal string, status int, out any) error {
	if err := checkShape(data); err != nil {
		return err
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	inBody := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return fmt.Errorf("%w: no SOAP Body", ErrMalformed)
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			if ee, ok := tok.(xml.EndElement); ok && inBody && ee.Name.Local == "Body" {
				if wantLocal == "" {
					return nil
				}
				return fmt.Errorf("%w: empty Body, want %s", ErrMalformed, wantLocal)
			}
			continue
		}
		if !inBody {
			if se.Name.Local == "Body" {
				inBody = true
			}
			continue
		}
		if se.Name.Local == "Fault" {
			var f soapFault
			if err := dec.DecodeElement(&f, &se); err != nil {
				return fmt.Errorf("%w: fault: %v", ErrMalformed, err)
			}
			return f.toError(action, status)
		}
		if wantLocal != "" && se.Name.Local != wantLocal {
			return fmt.Errorf("%w: got <%s>, want <%s>", ErrMalformed, se.Name.Local, wantLocal)
		}
		if out == nil {
			return dec.Skip()
		}
		if err := dec.DecodeElement(out, &se); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, se.Name.Local, err)
		}
		return nil
	}
}

// checkShape rejects DTDs (no entity games) and nesting deeper than maxDepth
// before any structured decoding happens.
func checkShape(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	depth := 0
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("%w: DTD/directive not allowed", ErrMalformed)
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, maxDepth)
			}
		case xml.EndElement:
			depth--
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("%w: processing instruction %q", ErrMalformed, t.Target)
			}
		}
	}
}
