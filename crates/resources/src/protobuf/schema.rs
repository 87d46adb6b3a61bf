//! The shape of the generated message table ([`super::schema_table`]) and
//! lookups into it.

use super::schema_table::MESSAGES;

/// The value type of a field (of each element for repeated fields, of each
/// value for maps; map keys are always strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    Str,
    Bool,
    I32,
    I64,
    F64,
    Bytes,
    /// Another message, by index into the table.
    Msg(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Label {
    One,
    Rep,
    /// `map<string, ty>`: repeated entries with key = 1, value = 2.
    Map,
}

/// Field flag: `name` is the JSON name (from the Go struct tag). Without it,
/// `name` is prost's snake_case name and the JSON name is looked up at run time.
pub(super) const JSON: u8 = 1;
/// Field flag: Go embeds the struct inline (`json:",inline"`): its fields are
/// merged into the parent object.
pub(super) const INLINE: u8 = 2;
/// Field flag: Go leaves the zero value out of the JSON (a value field tagged
/// `omitempty`, or `omitzero`).
pub(super) const OMIT_ZERO: u8 = 4;
/// Message flag: a named Go slice (`type Verbs []string`); proto wraps it in a
/// message with one repeated field, JSON is the bare array.
pub(super) const LIST: u8 = 1;

#[derive(Debug)]
pub(super) struct Field {
    pub tag: u32,
    pub name: &'static str,
    pub ty: Ty,
    pub label: Label,
    pub flags: u8,
}

#[derive(Debug)]
pub(super) struct Message {
    /// Full name, as the OpenAPI definitions spell it (`io.k8s.api.core.v1.Pod`).
    pub name: &'static str,
    pub flags: u8,
    /// Sorted by tag.
    pub fields: &'static [Field],
}

/// Shorthand constructor used by the generated table.
pub(super) const fn f(tag: u32, name: &'static str, ty: Ty, label: Label, flags: u8) -> Field {
    Field {
        tag,
        name,
        ty,
        label,
        flags,
    }
}

impl Message {
    /// The field with this tag, and its position in [`Message::fields`].
    pub(super) fn field(&self, tag: u32) -> Option<(usize, &'static Field)> {
        let fields = self.fields;
        fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| (i, &fields[i]))
    }
}

/// Every message, sorted by name.
pub(super) fn messages() -> &'static [Message] {
    &MESSAGES
}

pub(super) fn message(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// Index of the message with this full name.
pub(super) fn index_of(name: &str) -> Option<u16> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        // The generator refuses to emit more than u16::MAX messages.
        .and_then(|i| u16::try_from(i).ok())
}

/// Index of the message whose name matches ignoring ASCII case: names the Go
/// sources didn't cover keep prost's spelling (`HpaScalingPolicy`).
pub(super) fn index_of_ignore_case(name: &str) -> Option<u16> {
    MESSAGES
        .iter()
        .position(|m| m.name.eq_ignore_ascii_case(name))
        .and_then(|i| u16::try_from(i).ok())
}
