//! The bodies of CPM INVITEs: the SDP alone, or a multipart/mixed with an
//! RFC 5366 recipient list; and the IMDNs a relay reads.

use super::*;

/// An ad-hoc group's recipient list: the body part as received, and its entries.
pub(super) type RecipientList = (Part, Vec<Entry>);

/// The SDP of an INVITE and, for an ad-hoc group (RFC 5366), its recipient
/// list of at most `max_members` entries; else the status to refuse it
/// with: 400 for a body that cannot be read, 403 for a list longer than the
/// service allows (RFC 3261 s.21.4.4: "The server understood the request,
/// but is refusing to fulfill it").
pub(super) fn split_body(request: &Message, max_members: usize) -> Result<(Bytes, Option<RecipientList>), u16> {
    let content_type = request.content_type_str().unwrap_or("application/sdp");
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return Ok((request.body(), None));
    }
    let multipart = Multipart::parse(content_type, request.body()).map_err(|_| 400_u16)?;
    let sdp = multipart.find_media_type("application/sdp").ok_or(400_u16)?.body().clone();
    let list = match multipart.find_disposition(resource_lists::DISPOSITION) {
        Some(part) => {
            let entries = match resource_lists::read_with(part.body(), max_members) {
                Ok(entries) => entries,
                Err(resource_lists::ResourceListsError::TooManyEntries { .. }) => return Err(403),
                Err(_) => return Err(400),
            };
            // One leg per member, however many times the list names it.
            Some((part.clone(), resource_lists::distinct(entries)))
        }
        None => None,
    };
    Ok((sdp, list))
}
/// The INVITE body: the SDP alone, or a multipart/mixed with the list part.
pub(super) fn with_list(sdp: Bytes, list: Option<&Part>) -> Option<(Bytes, String)> {
    let Some(list) = list else { return Some((sdp, "application/sdp".to_owned())) };
    let sdp_part = Part::new(&[("Content-Type", "application/sdp")], sdp).ok()?;
    let built = Multipart::new(vec![sdp_part, list.clone()]).build("mixed", None).ok()?;
    Some((built.body, built.content_type))
}
/// The member and status of a CPIM-wrapped IMDN delivery notification
/// (RFC 5438 s.7.2.1), `None` for anything else.
pub(super) fn delivery_notification(content_type: Option<&str>, body: Bytes) -> Option<(String, DeliveryStatus)> {
    let essence = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(cpim::CONTENT_TYPE) {
        return None;
    }
    let message = cpim::Message::parse(body).ok()?;
    let imdn = imdn::from_message(&message).ok()??;
    let Notification::Delivery(status) = imdn.notification else { return None };
    // RFC 5438 s.11.1.3: <recipient-uri> names the member; else the CPIM From.
    let member = imdn.recipient_uri.unwrap_or_else(|| message.from().uri);
    Some((member, status))
}

impl Step<'_> {
    /// An IMDN delivery notification (RFC 5438 s.7.2.1: `message/imdn+xml` in
    /// CPIM with `Content-Disposition: notification`) from `member` to `to`
    /// about `message_id`.
    pub(super) fn imdn(&mut self, member: &str, to: &str, message_id: &MessageId, delivered: bool) -> Option<Bytes> {
        let notification =
            Notification::Delivery(if delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Failed });
        let imdn = Imdn {
            message_id: message_id.as_str().to_owned(),
            datetime: UNKNOWN_DATETIME.to_owned(),
            // RFC 5438 s.11.1.3: the final recipient, which names the member.
            recipient_uri: (!member.is_empty()).then(|| member.to_owned()),
            original_recipient_uri: None,
            subject: None,
            notification,
        };
        let id = MessageId::generate(&mut self.ids);
        let from = if member.is_empty() { to } else { member };
        let builder = imdn::wrap(&imdn, Address::new(from), Address::new(to), id.as_str(), None).ok()?;
        builder.build().ok()
    }
}
