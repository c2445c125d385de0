package onvif

import (
	"encoding/xml"
	"fmt"
)

// rawNode keeps an element subtree we do not model (e.g. an Extension) so a
// read-modify-write can send it back. Names keep their namespace URIs, and
// the encoder declares them on output, so prefixes need not survive.
type rawNode struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []rawChild
}

type rawChild struct {
	Node *rawNode
	Text string
}

const maxRawNodes = 4096

// UnmarshalXML implements xml.Unmarshaler.
func (n *rawNode) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	count := 0
	return n.read(d, start, &count, 0)
}

func (n *rawNode) read(d *xml.Decoder, start xml.StartElement, count *int, depth int) error {
	*count++
	if *count > maxRawNodes || depth > maxDepth {
		return fmt.Errorf("extension too large")
	}
	n.Name = start.Name
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue // the encoder re-declares namespaces itself
		}
		n.Attr = append(n.Attr, a)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			c := &rawNode{}
			if err := c.read(d, t, count, depth+1); err != nil {
				return err
			}
			n.Children = append(n.Children, rawChild{Node: c})
		case xml.CharData:
			n.Children = append(n.Children, rawChild{Text: string(t)})
		case xml.EndElement:
			return nil
		}
	}
}

// MarshalXML implements xml.Marshaler. The outer element takes the name the
// parent asked for (start); inner elements keep their namespace URIs.
func (n *rawNode) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Attr = append(start.Attr, n.Attr...)
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, c := range n.Children {
		if c.Node != nil {
			if err := c.Node.MarshalXML(e, xml.StartElement{Name: c.Node.Name}); err != nil {
				return err
			}
			continue
		}
		if err := e.EncodeToken(xml.CharData(c.Text)); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}
