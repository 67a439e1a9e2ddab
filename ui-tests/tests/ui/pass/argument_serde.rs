//! How the arguments struct is (de)serialized: through each type's own serde impls, with the
//! parameters' `#[serde]` attributes applied, a missing `Option` read as `None`, and a
//! `#[serde(with = ...)]` parameter left to its module (its type need not be serializable).

use jobs::prelude::*;

/// Not serializable itself: the parameter below says how to store it.
#[derive(Debug, Clone, PartialEq)]
pub struct Celsius(f64);

mod as_number {
    use super::Celsius;

    pub(crate) fn serialize<S: serde::Serializer>(
        value: &Celsius,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.0)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Celsius, D::Error> {
        <f64 as serde::Deserialize>::deserialize(deserializer).map(Celsius)
    }
}

/// Serializable through its derives.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    /// The city.
    pub city: String,
}

#[job]
async fn report(
    #[serde(rename = "where")] address: Address,
    #[serde(with = "as_number")] temperature: Celsius,
    note: Option<String>,
    #[serde(default = "seven")] days: u32,
    r#type: u8,
) {
    let _ = (address, temperature, note, days, r#type);
}

fn seven() -> u32 {
    7
}

fn main() {
    let job = Report::new(
        Address {
            city: "Lyon".to_owned(),
        },
        Celsius(21.5),
        Some("warm".to_owned()),
        3,
        1,
    );
    let json = serde_json::to_string(&job).unwrap();
    assert_eq!(
        json,
        r#"{"where":{"city":"Lyon"},"temperature":21.5,"note":"warm","days":3,"type":1}"#
    );
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (back.address, back.temperature, back.note),
        (job.address, job.temperature, job.note)
    );

    // Arguments stored before `note` and `days` existed still read.
    let old: Report =
        serde_json::from_str(r#"{"where":{"city":"Nice"},"temperature":0.0,"type":2}"#).unwrap();
    assert_eq!((old.note, old.days, old.r#type), (None, 7, 2));

    let error = serde_json::from_str::<Report>(r#"{"temperature":0.0,"type":2}"#).unwrap_err();
    assert!(
        error.to_string().contains("missing field `where`"),
        "{error}"
    );
}
