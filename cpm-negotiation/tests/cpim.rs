//! CPIM (RFC 3862) wrappers and IMDN (RFC 5438) notifications: the RFC
//! examples, round trips, malformed inputs, and a seeded property test.
//!
//! RFC examples are copied verbatim (page indentation removed) and given the
//! CRLF line ends RFC 3862 s.2.2 requires.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use cpm_negotiation::cpim::{
    Address, Builder, CpimError, DispositionNotification, Message, Namespace, Subject, IMDN_NAMESPACE,
};
use cpm_negotiation::imdn::{self, DeliveryStatus, DisplayStatus, Imdn, ImdnError, Notification, ProcessingStatus};
use cpm_negotiation::media::accepts;
use cpm_negotiation::MediaType;

fn crlf(text: &str) -> Bytes {
    Bytes::from(text.replace('\n', "\r\n"))
}

/// RFC 3862 s.5.1, the `h:`, `s:` and `e:` lines (the `m:` line is the
/// transport's Content-Type).
const RFC3862_5_1: &str = "From: MR SANDERS <im:piglet@100akerwood.com>
To: Depressed Donkey <im:eeyore@100akerwood.com>
DateTime: 2000-12-13T13:40:00-08:00
Subject: the weather will be fine today
Subject:;lang=fr beau temps prevu pour aujourd'hui
NS: MyFeatures <mid:MessageFeatures@id.foo.com>
Require: MyFeatures.VitalMessageOption
MyFeatures.VitalMessageOption: Confirmation-requested
MyFeatures.WackyMessageOption: Use-silly-font

Content-type: text/xml; charset=utf-8
Content-ID: <1234567890@foo.com>

<body>
Here is the text of my message.
</body>";

#[test]
fn rfc3862_s5_1_example() {
    let src = crlf(RFC3862_5_1);
    let m = Message::parse(src.clone()).unwrap();
    assert_eq!(m.from(), Address::new("im:piglet@100akerwood.com").with_display_name("MR SANDERS"));
    assert_eq!(
        m.to().collect::<Vec<_>>(),
        [Address::new("im:eeyore@100akerwood.com").with_display_name("Depressed Donkey")]
    );
    assert_eq!(m.date_time(), Some("2000-12-13T13:40:00-08:00"));
    assert_eq!(
        m.subjects().collect::<Vec<_>>(),
        [
            Subject { lang: None, text: "the weather will be fine today".into() },
            Subject { lang: Some("fr".into()), text: "beau temps prevu pour aujourd'hui".into() },
        ]
    );
    assert_eq!(m.namespaces().collect::<Vec<_>>(), [(Some("MyFeatures"), "mid:MessageFeatures@id.foo.com")]);
    assert_eq!(m.require().collect::<Vec<_>>(), ["MyFeatures.VitalMessageOption"]);
    let vital: Vec<_> = m.find("mid:MessageFeatures@id.foo.com", "VitalMessageOption").collect();
    assert_eq!(vital.len(), 1);
    assert_eq!(vital[0].value(), "Confirmation-requested");
    assert_eq!(vital[0].prefix(), Some("MyFeatures"));
    // RFC 3862 s.2.2: headers keep their order.
    let names: Vec<_> = m.headers().iter().map(|h| h.name()).collect();
    assert_eq!(
        names,
        [
            "From",
            "To",
            "DateTime",
            "Subject",
            "Subject",
            "NS",
            "Require",
            "MyFeatures.VitalMessageOption",
            "MyFeatures.WackyMessageOption"
        ]
    );
    assert_eq!(m.content_type(), "text/xml; charset=utf-8");
    assert_eq!(m.content_id(), Some("<1234567890@foo.com>"));
    assert_eq!(m.imdn_message_id(), None);
    assert_eq!(m.disposition_notification(), None);
    assert_eq!(&m.body()[..], b"<body>\r\nHere is the text of my message.\r\n</body>");
    // Zero-copy: the body is a slice of the input.
    assert_eq!(m.body().as_ptr(), src[m.body_offset()..].as_ptr());
    assert_eq!(m.headers()[6].value_bytes().as_ptr(), src[m.headers()[6].offset() + 9..].as_ptr());

    // The wrapped type is what accept-wrapped-types is checked against (RFC 4975 s.8.6).
    let list = |s: &str| -> Vec<MediaType> { s.split(' ').map(|e| MediaType::parse_str(e).unwrap()).collect() };
    assert!(accepts(&list("message/cpim"), &list("text/xml"), &m.body_type()));
    assert!(!accepts(&list("message/cpim"), &list("text/plain"), &m.body_type()));
}

/// RFC 5438 s.7.1.1.3 (an IM asking for delivery notifications).
const RFC5438_IM: &str = "From: Alice <im:alice@example.com>
To: Bob <im:bob@example.com>
NS: imdn <urn:ietf:params:imdn>
imdn.Message-ID: 34jk324j
DateTime: 2006-04-04T12:16:49-05:00
imdn.Disposition-Notification: positive-delivery, negative-delivery
Content-type: text/plain
Content-length: 12

Hello World";

/// RFC 5438 s.7.2.1.1 (a delivery notification).
const RFC5438_DELIVERY: &str = r#"From: Bob <im:bob@example.com>
To: Alice <im:alice@example.com>
NS: imdn <urn:ietf:params:imdn>
imdn.Message-ID: d834jied93rf
Content-type: message/imdn+xml
Content-Disposition: notification
Content-length: ...

<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
      <message-id>34jk324j</message-id>
      <datetime>2008-04-04T12:16:49-05:00</datetime>
     <recipient-uri>im:bob@example.com</recipient-uri>

      <original-recipient-uri
        >im:bob@example.com</original-recipient-uri>
      <delivery-notification>
         <status>
            <delivered/>
         </status>
      </delivery-notification>
    </imdn>
"#;

/// RFC 5438 s.7.2.1.2 (a display notification).
const RFC5438_DISPLAY: &str = r#"From: Bob <im:bob@example.com>
To: Alice <im:alice@example.com>
NS: imdn <urn:ietf:params:imdn>
imdn.Message-ID: dfjkleriou432333
Content-type: message/imdn+xml
Content-Disposition: notification
Content-length: ...

<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
      <message-id>34jk324j</message-id>
      <datetime>2008-04-04T12:16:49-05:00</datetime>
     <recipient-uri>im:bob@example.com</recipient-uri>
      <original-recipient-uri
         >im:bob@example.com</original-recipient-uri>
      <display-notification>
         <status>
            <displayed/>
         </status>
      </display-notification>
    </imdn>
"#;

/// RFC 5438 s.8.1 (a processing notification, from an intermediary).
const RFC5438_PROCESSING: &str = r#"From: Bob <im:bob@example.com>
To: Alice <im:alice@example.com>
Content-type: message/imdn+xml
Content-Disposition: notification
Content-length: ...

<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
      <message-id>34jk324j</message-id>
      <datetime>2008-04-04T12:16:49-05:00</datetime>
     <recipient-uri>im:bob@example.com</recipient-uri>
      <original-recipient-uri
         >im:bob@example.com</original-recipient-uri>
      <processing-notification>
         <status>
            <processed/>
         </status>
      </processing-notification>
    </imdn>
"#;

/// The RFC 5438 examples run the CPIM message headers straight into the
/// MIME headers, without the blank line RFC 3862 s.2 requires between them.
/// As written they do not parse; with the blank line they do.
fn with_separator(example: &str) -> Bytes {
    crlf(&example.replacen("\nContent-type:", "\n\nContent-type:", 1))
}

fn bob_notification(notification: Notification) -> Imdn {
    Imdn {
        message_id: "34jk324j".into(),
        datetime: "2008-04-04T12:16:49-05:00".into(),
        recipient_uri: Some("im:bob@example.com".into()),
        original_recipient_uri: Some("im:bob@example.com".into()),
        subject: None,
        notification,
    }
}

#[test]
fn rfc5438_examples_as_written_lack_the_separator() {
    assert_eq!(Message::parse(crlf(RFC5438_IM)), Err(CpimError::MissingBlankLine { at: 280 }));
    // The XML declaration line has no colon: it is not a MIME header.
    let err = Message::parse(crlf(RFC5438_DELIVERY)).unwrap_err();
    assert!(matches!(err, CpimError::MimeHeader { .. }), "{err:?}");
}

#[test]
fn rfc5438_s7_1_1_3_im() {
    let m = Message::parse(with_separator(RFC5438_IM)).unwrap();
    assert_eq!(m.imdn_message_id(), Some("34jk324j"));
    assert_eq!(
        m.disposition_notification(),
        Some(DispositionNotification { positive_delivery: true, negative_delivery: true, ..Default::default() })
    );
    assert_eq!(m.mime_header("content-length"), Some("12"));
    assert_eq!(&m.body()[..], b"Hello World");
    assert!(!m.is_notification());
    assert_eq!(imdn::from_message(&m), Ok(None));

    // What Bob sends back, one per recipient: delivered was asked for, displayed was not.
    let delivered = Notification::Delivery(DeliveryStatus::Delivered);
    let answer = Imdn::answering(&m, Some("im:bob@example.com".into()), delivered).unwrap();
    assert_eq!(answer.message_id, "34jk324j");
    assert_eq!(answer.datetime, "2006-04-04T12:16:49-05:00");
    assert_eq!(answer.original_recipient_uri, None);
    let failed = Notification::Delivery(DeliveryStatus::Failed);
    assert!(Imdn::answering(&m, None, failed).is_some());
    assert_eq!(Imdn::answering(&m, None, Notification::Display(DisplayStatus::Displayed)), None);
}

#[test]
fn rfc5438_notification_examples() {
    let cases = [
        (RFC5438_DELIVERY, Some("d834jied93rf"), Notification::Delivery(DeliveryStatus::Delivered)),
        (RFC5438_DISPLAY, Some("dfjkleriou432333"), Notification::Display(DisplayStatus::Displayed)),
    ];
    for (text, message_id, notification) in cases {
        let m = Message::parse(with_separator(text)).unwrap();
        assert_eq!(m.imdn_message_id(), message_id);
        assert!(m.is_notification());
        let got = imdn::from_message(&m).unwrap().unwrap();
        assert_eq!(got, bob_notification(notification));
        assert_eq!(imdn::read(&imdn::write(&got).unwrap()), Ok(got));
        // An IMDN is never answered (RFC 5438 s.7.2.1).
        assert_eq!(Imdn::answering(&m, None, notification), None);
    }
    // s.8.1's processing notification has no imdn.Message-ID, which s.7.2.1 requires; its XML is fine.
    let err = Message::parse(with_separator(RFC5438_PROCESSING)).unwrap_err();
    assert!(matches!(err, CpimError::Missing { name: "imdn.Message-ID", .. }), "{err:?}");
    let xml = RFC5438_PROCESSING.split_once("\n\n").unwrap().1;
    assert_eq!(imdn::read(xml.as_bytes()), Ok(bob_notification(Notification::Processing(ProcessingStatus::Processed))));
}

#[test]
fn controlling_function_fans_out_notifications() {
    let im = Message::parse(with_separator(RFC5438_IM)).unwrap();
    let members = ["sip:bob@example.com", "sip:carol@example.com", "tel:+15551234"];
    for (i, member) in members.iter().enumerate() {
        let status = Notification::Delivery(DeliveryStatus::Delivered);
        let notification = Imdn::answering(&im, Some((*member).to_owned()), status).unwrap();
        let builder = imdn::wrap(
            &notification,
            Address::new("sip:conf-factory@example.com"),
            im.from(),
            format!("n{i}"),
            Some("2006-04-04T12:16:50-05:00".into()),
        )
        .unwrap();
        let wire = builder.build().unwrap();
        let m = Message::parse(wire.clone()).unwrap();
        assert_eq!(m.imdn_message_id(), Some(format!("n{i}").as_str()));
        assert_eq!(m.content_type(), imdn::CONTENT_TYPE);
        assert_eq!(m.content_disposition(), Some(imdn::DISPOSITION));
        // RFC 5438 s.7.2.1: "A Disposition-Notification header field MUST NOT appear in an IMDN".
        assert_eq!(m.disposition_notification(), None);
        assert_eq!(imdn::from_message(&m), Ok(Some(notification)));
        assert_eq!(Builder::from_message(&m), Some(builder));
        let text = std::str::from_utf8(&wire).unwrap();
        assert!(text.starts_with(
            "From: <sip:conf-factory@example.com>\r\nTo: \"Alice\" <im:alice@example.com>\r\n\
             DateTime: 2006-04-04T12:16:50-05:00\r\nNS: imdn <urn:ietf:params:imdn>\r\n"
        ));
    }
}

#[test]
fn canonical_round_trip() {
    let b = Builder {
        from: Address::new("sip:alice@example.com").with_display_name("Alice \"A\" \\ O'Hara\t"),
        to: vec![Address::new("sip:bob@example.com"), Address::new("tel:+1555").with_display_name("")],
        cc: vec![Address::new("sip:carol@example.com").with_display_name("Carol")],
        date_time: Some("not a date".into()),
        subjects: vec![
            Subject { lang: None, text: "  hi\r\n\u{1}\u{7f} ".into() },
            Subject { lang: Some("fr".into()), text: String::new() },
        ],
        namespaces: vec![Namespace { prefix: "MyFeatures".into(), uri: "mid:MessageFeatures@id.foo.com".into() }],
        require: vec!["MyFeatures.VitalMessageOption".into(), "Locale.MustRenderKanji".into()],
        message_id: Some("34jk324j".into()),
        disposition_notification: Some(DispositionNotification { display: true, ..Default::default() }),
        original_to: Some(Address::new("sip:list@example.com")),
        headers: vec![
            ("MyFeatures.VitalMessageOption".into(), "Confirmation-requested".into()),
            ("imdn.IMDN-Record-Route".into(), "<sip:cf@example.com>".into()),
            ("X-Other".into(), "back\\slash".into()),
        ],
        content_type: "text/plain; charset=utf-8".into(),
        content_id: Some("<1234567890@foo.com>".into()),
        content_disposition: Some("render".into()),
        mime_headers: vec![("Content-Length".into(), "5".into())],
        body: Bytes::from_static(b"hello\r\n\r\nworld"),
    };
    let wire = b.build().unwrap();
    let m = Message::parse(wire.clone()).unwrap();
    assert_eq!(Builder::from_message(&m).as_ref(), Some(&b));
    // And the canonical bytes come back unchanged.
    assert_eq!(Builder::from_message(&m).unwrap().build().unwrap(), wire);
    // The head and body can go out separately (no copy of the content).
    let head = b.build_head().unwrap();
    assert_eq!(wire.len(), head.len() + b.body.len());
    let text = std::str::from_utf8(&head).unwrap();
    let want = "From: \"Alice \\\"A\\\" \\\\ O'Hara\\t\" <sip:alice@example.com>\r\n\
                To: <sip:bob@example.com>\r\n\
                To: \"\" <tel:+1555>\r\n\
                cc: \"Carol\" <sip:carol@example.com>\r\n\
                DateTime: not a date\r\n\
                Subject:   hi\\r\\n\\u0001\\u007f \r\n\
                Subject:;lang=fr \r\n\
                NS: imdn <urn:ietf:params:imdn>\r\n\
                NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n\
                Require: MyFeatures.VitalMessageOption,Locale.MustRenderKanji\r\n\
                imdn.Message-ID: 34jk324j\r\n\
                imdn.Disposition-Notification: display\r\n\
                imdn.Original-To: <sip:list@example.com>\r\n\
                MyFeatures.VitalMessageOption: Confirmation-requested\r\n\
                imdn.IMDN-Record-Route: <sip:cf@example.com>\r\n\
                X-Other: back\\\\slash\r\n\
                \r\n\
                Content-Type: text/plain; charset=utf-8\r\n\
                Content-ID: <1234567890@foo.com>\r\n\
                Content-Disposition: render\r\n\
                Content-Length: 5\r\n\
                \r\n";
    assert_eq!(text, want);
}

#[test]
fn imdn_headers_resolve_through_any_prefix() {
    let cases: &[(&str, Option<&str>)] = &[
        ("NS: x <urn:ietf:params:imdn>\nx.Message-ID: a1\n", Some("a1")),
        ("NS: imdn <URN:IETF:params:imdn>\nimdn.Message-ID: a2\n", Some("a2")),
        // Declared, but for another namespace: not the IMDN header.
        ("NS: imdn <urn:example:other>\nimdn.Message-ID: a3\n", None),
        // The latest declaration wins.
        ("NS: p <urn:example:other>\nNS: p <urn:ietf:params:imdn>\np.Message-ID: a4\n", Some("a4")),
        // An NS without prefix moves the unprefixed headers into that namespace.
        ("NS: <urn:ietf:params:imdn>\nMessage-ID: a5\n", Some("a5")),
        ("Message-ID: a6\n", None),
    ];
    for &(headers, want) in cases {
        let text = format!("From: <sip:a@x>\nTo: <sip:b@x>\n{headers}\nContent-Type: text/plain\n\n");
        let m = Message::parse(crlf(&text)).unwrap();
        assert_eq!(m.imdn_message_id(), want, "{headers}");
        if want.is_some() {
            assert_eq!(m.find(IMDN_NAMESPACE, "Message-ID").count(), 1);
        }
    }
    // After `NS: <other>`, "From" is no longer the CPIM From: the message has none.
    let text = "NS: <urn:example:other>\nFrom: <sip:a@x>\nTo: <sip:b@x>\n\nContent-Type: text/plain\n\n";
    assert!(matches!(Message::parse(crlf(text)), Err(CpimError::Missing { name: "From", .. })));
}

#[test]
fn malformed() {
    let ok_head = "From: <sip:a@x>\nTo: <sip:b@x>\n";
    let cases: Vec<(String, Result<(), CpimError>)> = vec![
        (format!("{ok_head}\nContent-Type: text/plain\n\nbody"), Ok(())),
        // A bad DateTime is kept as text.
        (format!("{ok_head}DateTime: yesterday-ish\n\nContent-Type: text/plain\n\n"), Ok(())),
        // Missing blank lines.
        (ok_head.to_string(), Err(CpimError::MissingBlankLine { at: 32 })),
        (format!("{ok_head}\nContent-Type: text/plain\n"), Err(CpimError::MissingBlankLine { at: 60 })),
        (format!("{ok_head}\nContent-Type: text/plain"), Err(CpimError::MissingBlankLine { at: 34 })),
        // Missing required headers.
        (format!("{ok_head}\nContent-ID: <x@y>\n\nbody"), Err(CpimError::Missing { at: 53, name: "Content-Type", rule: "RFC 3862 s.2.4" })),
        ("To: <sip:b@x>\n\nContent-Type: text/plain\n\n".into(), Err(CpimError::Missing { at: 15, name: "From", rule: "required by this profile, RFC 3862 s.6" })),
        ("From: <sip:a@x>\n\nContent-Type: text/plain\n\n".into(), Err(CpimError::Missing { at: 17, name: "To", rule: "required by this profile, RFC 3862 s.6" })),
        (
            format!("{ok_head}NS: imdn <urn:ietf:params:imdn>\nimdn.Disposition-Notification: display\n\nContent-Type: text/plain\n\n"),
            Err(CpimError::Missing { at: 105, name: "imdn.Message-ID", rule: "RFC 5438 s.7.1.1.1" }),
        ),
        (
            format!("{ok_head}NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: m\nimdn.Disposition-Notification: display\n\nContent-Type: text/plain\n\n"),
            Err(CpimError::Missing { at: 125, name: "DateTime", rule: "RFC 5438 s.7.1.1.2" }),
        ),
        // An empty Disposition-Notification asks for nothing.
        (format!("{ok_head}NS: imdn <urn:ietf:params:imdn>\nimdn.Disposition-Notification: \n\nContent-Type: text/plain\n\n"), Ok(())),
        (
            format!("{ok_head}\nContent-Type: message/imdn+xml\nContent-Disposition: notification\n\n"),
            Err(CpimError::Missing { at: 32, name: "imdn.Message-ID", rule: "RFC 5438 s.7.2.1" }),
        ),
        // Undeclared prefix, for the IMDN headers too.
        (format!("{ok_head}imdn.Message-ID: m\n\nContent-Type: text/plain\n\n"), Err(CpimError::UndeclaredPrefix { at: 32 })),
        (format!("{ok_head}imdn.Message-ID: m\nNS: imdn <urn:ietf:params:imdn>\n\nContent-Type: text/plain\n\n"), Err(CpimError::UndeclaredPrefix { at: 32 })),
        // Repetitions.
        (format!("{ok_head}From: <sip:c@x>\n\nContent-Type: text/plain\n\n"), Err(CpimError::Repeated { at: 32, name: "From" })),
        (format!("{ok_head}\nContent-Type: text/plain\ncontent-type: text/html\n\n"), Err(CpimError::Repeated { at: 60, name: "Content-Type" })),
        // Line syntax.
        (format!("{ok_head}Subject:hi\n\nContent-Type: text/plain\n\n"), Err(CpimError::Separator { at: 32 })),
        (format!("{ok_head} Subject: hi\n\nContent-Type: text/plain\n\n"), Err(CpimError::HeaderName { at: 32 })),
        (format!("{ok_head}Subject:;lang hi\n\nContent-Type: text/plain\n\n"), Err(CpimError::Parameter { at: 32 })),
        (format!("{ok_head}Subject: a\u{7f}\n\nContent-Type: text/plain\n\n"), Err(CpimError::ControlChar { at: 42 })),
        (format!("{ok_head}To: <sip:c@x> x\n\nContent-Type: text/plain\n\n"), Err(CpimError::Value { at: 32, name: "To", rule: "RFC 3862 s.4.2 [ Formal-name ] \"<\" URI \">\"" })),
        (format!("{ok_head}NS: a.b <urn:x>\n\nContent-Type: text/plain\n\n"), Err(CpimError::Value { at: 32, name: "NS", rule: "RFC 3862 s.4.6 [ Name-prefix ] \"<\" URI \">\"" })),
        (format!("{ok_head}Require: a.b.c\n\nContent-Type: text/plain\n\n"), Err(CpimError::Value { at: 32, name: "Require", rule: "RFC 3862 s.4.7 Header-name *( \",\" Header-name )" })),
        (format!("{ok_head}NS: i <urn:ietf:params:imdn>\ni.Message-ID: a b\n\nContent-Type: text/plain\n\n"), Err(CpimError::Value { at: 62, name: "imdn.Message-ID", rule: "RFC 5438 s.10 Message-ID = Token" })),
        (format!("{ok_head}\nContent-Type: text\n\n"), Err(CpimError::Value { at: 34, name: "Content-Type", rule: "RFC 2045 s.5.1 type \"/\" subtype" })),
        (format!("{ok_head}\nContent-Type text/plain\n\n"), Err(CpimError::MimeHeader { at: 34 })),
        (format!("{ok_head}\n Content-Type: text/plain\n\n"), Err(CpimError::MimeHeader { at: 34 })),
        // Folded MIME values are fine.
        (format!("{ok_head}\nContent-Type: multipart/mixed;\n boundary=x\n\n"), Ok(())),
    ];
    let mut wrong = Vec::new();
    for (text, want) in &cases {
        let got = Message::parse(crlf(text)).map(|_| ());
        if got != *want {
            wrong.push((text, got));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    let bad_utf8 = Bytes::from_static(b"From: <sip:a@x>\r\nTo: \xff <sip:b@x>\r\n\r\nContent-Type: a/b\r\n\r\n");
    assert_eq!(Message::parse(bad_utf8), Err(CpimError::Utf8 { at: 17 }));
    // RFC 3862 s.2.2: CRLF, not a bare LF.
    let bare_lf = Bytes::from_static(b"From: <sip:a@x>\nTo: <sip:b@x>\r\n\r\nContent-Type: a/b\r\n\r\n");
    assert_eq!(Message::parse(bare_lf), Err(CpimError::LineEnd { at: 15 }));
    let lone_cr = Bytes::from_static(b"From: <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\nContent-Type: a/b\rX: y\r\n\r\n");
    assert_eq!(Message::parse(lone_cr), Err(CpimError::ControlChar { at: 51 }));
}

#[test]
fn header_limit() {
    let text = crlf("From: <sip:a@x>\nTo: <sip:b@x>\nTo: <sip:c@x>\n\nContent-Type: text/plain\nContent-ID: <i>\n\n");
    assert!(Message::parse_with(text.clone(), 5).is_ok());
    assert_eq!(Message::parse_with(text.clone(), 4), Err(CpimError::TooManyHeaders { at: 75, limit: 4 }));
    assert_eq!(Message::parse_with(text, 2), Err(CpimError::TooManyHeaders { at: 32, limit: 2 }));
}

#[test]
fn builder_refuses() {
    let good = Builder::new(Address::new("sip:a@x"), Address::new("sip:b@x"), "text/plain", Bytes::from_static(b"hi"));
    assert!(good.build().is_ok());
    let field = |b: Builder| match b.build() {
        Err(cpm_negotiation::cpim::BuildError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let cases: Vec<(Builder, &str)> = vec![
        (Builder { from: Address::new("a@x"), ..good.clone() }, "from"),
        (Builder { to: vec![], ..good.clone() }, "to"),
        (Builder { cc: vec![Address::new("sip:a b")], ..good.clone() }, "cc"),
        (Builder { date_time: Some("a\\b".into()), ..good.clone() }, "date_time"),
        (
            Builder { subjects: vec![Subject { lang: Some("f r".into()), text: String::new() }], ..good.clone() },
            "subjects",
        ),
        (
            Builder { namespaces: vec![Namespace { prefix: "imdn".into(), uri: "urn:x".into() }], ..good.clone() },
            "namespaces",
        ),
        (
            Builder { namespaces: vec![Namespace { prefix: "i".into(), uri: IMDN_NAMESPACE.into() }], ..good.clone() },
            "namespaces",
        ),
        (Builder { require: vec!["a.b.c".into()], ..good.clone() }, "require"),
        (Builder { message_id: Some("a b".into()), ..good.clone() }, "message_id"),
        (
            Builder {
                disposition_notification: Some(DispositionNotification { display: true, ..Default::default() }),
                ..good.clone()
            },
            "disposition_notification",
        ),
        (Builder { headers: vec![("p.X".into(), "v".into())], ..good.clone() }, "headers"),
        (Builder { headers: vec![("From".into(), "v".into())], ..good.clone() }, "headers"),
        (Builder { headers: vec![("imdn.Message-ID".into(), "v".into())], ..good.clone() }, "headers"),
        (Builder { content_type: "text".into(), ..good.clone() }, "content_type"),
        (Builder { content_id: Some("a\r\nb".into()), ..good.clone() }, "content_id"),
        (Builder { mime_headers: vec![("content-type".into(), "a/b".into())], ..good.clone() }, "mime_headers"),
        (Builder { mime_headers: vec![("X".into(), " v".into())], ..good }, "mime_headers"),
    ];
    for (b, want) in cases {
        assert_eq!(field(b), want);
    }
}

// ---------------------------------------------------------------------------
// Seeded property tests

fn xorshift_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn word(u: &mut Unstructured<'_>, alphabet: &[u8], min: usize, max: usize) -> arbitrary::Result<String> {
    let n = u.int_in_range(min..=max)?;
    (0..n).map(|_| u.choose(alphabet).map(|&b| char::from(b))).collect()
}

fn uri(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let scheme = *u.choose(&["sip", "sips", "tel", "im", "mid", "urn"])?;
    Ok(format!("{scheme}:{}", word(u, b"abcXYZ019@.;=+-_~%[]", 1, 16)?))
}

fn address(u: &mut Unstructured<'_>) -> arbitrary::Result<Address> {
    let display_name = if u.arbitrary()? { Some(String::arbitrary(u)?) } else { None };
    Ok(Address { display_name, uri: uri(u)? })
}

fn builder(u: &mut Unstructured<'_>) -> arbitrary::Result<Builder> {
    let n = |u: &mut Unstructured<'_>, max| u.int_in_range(0..=max);
    let mut b = Builder { from: address(u)?, ..Builder::default() };
    for _ in 0..=n(u, 3)? {
        b.to.push(address(u)?);
    }
    for _ in 0..n(u, 2)? {
        b.cc.push(address(u)?);
    }
    if u.arbitrary()? {
        b.date_time = Some(word(u, b"0123456789-T:+Z .", 0, 25)?);
    }
    for _ in 0..n(u, 2)? {
        let lang = if u.arbitrary()? { Some(word(u, b"abcdefXYZ-0", 1, 8)?) } else { None };
        b.subjects.push(Subject { lang, text: String::arbitrary(u)? });
    }
    for i in 0..n(u, 2)? {
        b.namespaces.push(Namespace { prefix: format!("P{i}{}", word(u, ALNUM, 0, 4)?), uri: format!("urn:x:{i}") });
    }
    let mut prefixes: Vec<String> = b.namespaces.iter().map(|ns| ns.prefix.clone()).collect();
    prefixes.push("imdn".into());
    for _ in 0..n(u, 2)? {
        b.require.push(format!("{}.{}", u.choose(&prefixes)?, word(u, ALNUM, 1, 8)?));
    }
    if u.arbitrary()? {
        b.message_id = Some(word(u, b"abcXYZ019.-_!~", 1, 20)?);
    }
    if u.arbitrary()? {
        let dn = DispositionNotification {
            positive_delivery: u.arbitrary()?,
            negative_delivery: u.arbitrary()?,
            processing: u.arbitrary()?,
            display: u.arbitrary()?,
        };
        if !dn.is_empty() {
            b.message_id.get_or_insert_with(|| "m1".into());
            b.date_time.get_or_insert_with(|| "2024-01-01T00:00:00Z".into());
        }
        b.disposition_notification = Some(dn);
    }
    if u.arbitrary()? {
        b.original_to = Some(address(u)?);
    }
    for _ in 0..n(u, 3)? {
        let local = word(u, ALNUM, 1, 8)?;
        let name = if u.arbitrary()? { format!("X-{local}") } else { format!("{}.{local}", u.choose(&prefixes)?) };
        // imdn.<typed name> is not an extension header.
        if !["imdn.Message", "imdn.Disposition", "imdn.Original"].iter().any(|t| name.starts_with(t)) {
            b.headers.push((name, String::arbitrary(u)?));
        }
    }
    b.content_type = (*u.choose(&["text/plain", "text/plain; charset=utf-8", "message/imdn+xml", "image/png"])?).into();
    if u.arbitrary()? {
        b.content_id = Some(format!("<{}@x>", word(u, ALNUM, 1, 10)?));
    }
    if u.arbitrary()? {
        b.content_disposition = Some((*u.choose(&["render", "attachment; filename=a.txt", "inline"])?).into());
    }
    for _ in 0..n(u, 2)? {
        b.mime_headers
            .push((format!("X-{}", word(u, ALNUM, 1, 8)?), word(u, b"ab c;=1", 1, 10)?.trim().replace(' ', "_")));
    }
    b.body = Bytes::from(Vec::<u8>::arbitrary(u)?);
    Ok(b)
}

#[test]
fn seeded_builder_round_trip() {
    let mut built = 0;
    for seed in 0..400u64 {
        let data = xorshift_bytes(seed, 2048);
        let mut u = Unstructured::new(&data);
        let b = builder(&mut u).unwrap();
        let wire = b.build().unwrap_or_else(|e| panic!("seed {seed}: {e}\n{b:#?}"));
        built += 1;
        let m = Message::parse(wire.clone()).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{b:#?}"));
        assert_eq!(Builder::from_message(&m).as_ref(), Some(&b), "seed {seed}");
        assert_eq!(Builder::from_message(&m).unwrap().build().unwrap(), wire, "seed {seed}");

        // Damaged copies never panic; what parses and rebuilds round-trips.
        let mut bytes = wire.to_vec();
        let flips = xorshift_bytes(seed ^ 0xABCD, 8);
        for pair in flips.chunks(2) {
            if let (Some(&at), Some(&to)) = (pair.first(), pair.get(1)) {
                let len = bytes.len();
                if let Some(b) = bytes.get_mut(usize::from(at) * len / 256) {
                    *b = to;
                }
            }
        }
        if let Ok(m) = Message::parse(Bytes::from(bytes)) {
            if let Some(Ok(rebuilt)) = Builder::from_message(&m).map(|b| b.build().map(|w| (b, w))) {
                let again = Message::parse(rebuilt.1).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                assert_eq!(Builder::from_message(&again), Some(rebuilt.0), "seed {seed}");
            }
        }
    }
    assert_eq!(built, 400);
}

#[test]
fn seeded_imdn_round_trip() {
    let statuses = [
        Notification::Delivery(DeliveryStatus::Delivered),
        Notification::Delivery(DeliveryStatus::Failed),
        Notification::Delivery(DeliveryStatus::Forbidden),
        Notification::Delivery(DeliveryStatus::Error),
        Notification::Display(DisplayStatus::Displayed),
        Notification::Display(DisplayStatus::Forbidden),
        Notification::Display(DisplayStatus::Error),
        Notification::Processing(ProcessingStatus::Processed),
        Notification::Processing(ProcessingStatus::Stored),
        Notification::Processing(ProcessingStatus::Forbidden),
        Notification::Processing(ProcessingStatus::Error),
    ];
    for seed in 0..300u64 {
        let data = xorshift_bytes(seed, 512);
        let mut u = Unstructured::new(&data);
        let opt_uri = |u: &mut Unstructured<'_>| -> arbitrary::Result<Option<String>> {
            Ok(if u.arbitrary()? { Some(uri(u)?.replace('%', "&")) } else { None })
        };
        let x = Imdn {
            message_id: word(&mut u, b"abcXYZ019.-_!~<&", 1, 20).unwrap(),
            datetime: String::arbitrary(&mut u).unwrap() + "T",
            recipient_uri: opt_uri(&mut u).unwrap(),
            original_recipient_uri: opt_uri(&mut u).unwrap(),
            subject: if u.arbitrary().unwrap() { Some(String::arbitrary(&mut u).unwrap()) } else { None },
            notification: *u.choose(&statuses).unwrap(),
        };
        let xml_ok = [Some(&x.datetime), x.subject.as_ref()].into_iter().flatten().all(|s| {
            s.chars()
                .all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        });
        match imdn::write(&x) {
            Ok(xml) => {
                assert!(xml_ok, "seed {seed}");
                assert_eq!(imdn::read(&xml), Ok(x), "seed {seed}");
            }
            Err(e) => {
                assert!(!xml_ok, "seed {seed}: {e}");
                assert!(matches!(e, ImdnError::Invalid { field: "text", .. }), "seed {seed}: {e}");
            }
        }
    }
}
