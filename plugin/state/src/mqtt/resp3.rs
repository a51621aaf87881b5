//! The state store's wire format: requests are RESP3 arrays of bulk strings (`*3\r\n$3\r\nGET\r\n
//! ...`), answers are RESP3 simple strings, bulk strings, integers or errors, as Azure IoT
//! Operations' state store speaks them.

use crate::SetCondition;
use std::time::Duration;

/// Arguments a request may carry at most (`SET key value NEX PX ms` has six).
const MAX_ARGUMENTS: usize = 16;

/// A request, borrowing from its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `SET key value [NX|NEX] [PX ms]`.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// `NX`: only if missing; `NEX`: only if missing or equal.
        condition: SetCondition,
        /// `PX ms`: expiry.
        expires: Option<Duration>,
    },
    /// `GET key`.
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// `DEL key`.
    Del {
        /// The key.
        key: &'a [u8],
    },
    /// `VDEL key value`: delete only if the key holds `value`.
    VDel {
        /// The key.
        key: &'a [u8],
        /// The value it must hold.
        value: &'a [u8],
    },
    /// `KEYNOTIFY key [STOP]`: notify the requester of changes of `key` (or stop).
    KeyNotify {
        /// The key.
        key: &'a [u8],
        /// `STOP`.
        stop: bool,
    },
}

/// Why a request was refused; the message is the one AIO's state store answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not a RESP3 array of bulk strings, or an option it does not know.
    #[error("syntax error")]
    Syntax,
    /// A command it does not serve.
    #[error("unknown command")]
    UnknownCommand,
    /// Too few or too many arguments for the command.
    #[error("wrong number of arguments")]
    WrongNumberOfArguments,
}

impl<'a> Command<'a> {
    /// Reads one request.
    ///
    /// ```
    /// use weir_state::mqtt::resp3::Command;
    /// let get = Command::parse(b"*2\r\n$3\r\nGET\r\n$4\r\nroom\r\n").unwrap();
    /// assert_eq!(get, Command::Get { key: b"room" });
    /// ```
    pub fn parse(payload: &'a [u8]) -> Result<Command<'a>, RequestError> {
        let mut arguments = [&[][..]; MAX_ARGUMENTS];
        let count = split(payload, &mut arguments)?;
        let (name, arguments) = arguments[..count]
            .split_first()
            .ok_or(RequestError::Syntax)?;
        let name = name.to_ascii_uppercase();
        match (name.as_slice(), arguments) {
            (b"SET", [key, value, options @ ..]) => set(key, value, options),
            (b"GET", [key]) => Ok(Command::Get { key }),
            (b"DEL", [key]) => Ok(Command::Del { key }),
            (b"VDEL", [key, value]) => Ok(Command::VDel { key, value }),
            (b"KEYNOTIFY", [key]) => Ok(Command::KeyNotify { key, stop: false }),
            (b"KEYNOTIFY", [key, stop]) if stop.eq_ignore_ascii_case(b"STOP") => {
                Ok(Command::KeyNotify { key, stop: true })
            }
            (b"KEYNOTIFY", [_, _]) => Err(RequestError::Syntax),
            (b"SET" | b"GET" | b"DEL" | b"VDEL" | b"KEYNOTIFY", _) => {
                Err(RequestError::WrongNumberOfArguments)
            }
            _ => Err(RequestError::UnknownCommand),
        }
    }

    /// The key the request is about.
    pub fn key(&self) -> &'a [u8] {
        match self {
            Command::Set { key, .. }
            | Command::Get { key }
            | Command::Del { key }
            | Command::VDel { key, .. }
            | Command::KeyNotify { key, .. } => key,
        }
    }
}

fn set<'a>(
    key: &'a [u8],
    value: &'a [u8],
    options: &[&'a [u8]],
) -> Result<Command<'a>, RequestError> {
    let mut condition = SetCondition::Unconditional;
    let mut expires = None;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => condition = SetCondition::OnlyIfDoesNotExist,
            b"NEX" => condition = SetCondition::OnlyIfEqualOrDoesNotExist,
            b"PX" => {
                let millis = options.next().ok_or(RequestError::Syntax)?;
                let millis = std::str::from_utf8(millis)
                    .ok()
                    .and_then(|m| m.parse::<u64>().ok())
                    .filter(|m| *m > 0)
                    .ok_or(RequestError::Syntax)?;
                expires = Some(Duration::from_millis(millis));
            }
            _ => return Err(RequestError::Syntax),
        }
    }
    Ok(Command::Set {
        key,
        value,
        condition,
        expires,
    })
}

/// Splits `*N\r\n` followed by N bulk strings into `arguments`; how many there are.
fn split<'a>(payload: &'a [u8], arguments: &mut [&'a [u8]]) -> Result<usize, RequestError> {
    let (count, mut rest) = header(payload, b'*')?;
    if count == 0 || count > arguments.len() {
        return Err(if count == 0 {
            RequestError::Syntax
        } else {
            RequestError::WrongNumberOfArguments
        });
    }
    for argument in arguments.iter_mut().take(count) {
        let (length, after) = header(rest, b'$')?;
        let end = length.checked_add(2).ok_or(RequestError::Syntax)?;
        let body = after.get(..end).ok_or(RequestError::Syntax)?;
        if !body.ends_with(b"\r\n") {
            return Err(RequestError::Syntax);
        }
        *argument = &body[..length];
        rest = &after[end..];
    }
    if !rest.is_empty() {
        return Err(RequestError::Syntax);
    }
    Ok(count)
}

/// Reads `<marker><decimal>\r\n`: the number and what follows.
fn header(input: &[u8], marker: u8) -> Result<(usize, &[u8]), RequestError> {
    let rest = input.strip_prefix(&[marker]).ok_or(RequestError::Syntax)?;
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(RequestError::Syntax)?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::Syntax);
    }
    let number = digits
        .iter()
        .try_fold(0usize, |n, d| {
            n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        })
        .ok_or(RequestError::Syntax)?;
    Ok((number, &rest[end + 2..]))
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`.
    Ok,
    /// A bulk string: the value of a `GET`.
    Value(&'a [u8]),
    /// `$-1`: no such key (`GET`).
    Nil,
    /// An integer: keys deleted (`DEL`, `VDEL`), `-1` for a condition that did not hold.
    Integer(i64),
    /// `-ERR message`.
    Error(&'a str),
}

impl Reply<'_> {
    /// The reply's bytes.
    ///
    /// ```
    /// use weir_state::mqtt::resp3::Reply;
    /// assert_eq!(Reply::Value(b"21.5").encode(), b"$4\r\n21.5\r\n");
    /// assert_eq!(Reply::Integer(-1).encode(), b":-1\r\n");
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Ok => b"+OK\r\n".to_vec(),
            Reply::Nil => b"$-1\r\n".to_vec(),
            Reply::Integer(n) => format!(":{n}\r\n").into_bytes(),
            Reply::Error(message) => format!("-ERR {message}\r\n").into_bytes(),
            Reply::Value(value) => bulk(b"", value),
        }
    }
}

/// A key notification's payload: `NOTIFY SET VALUE <value>`, or `NOTIFY DELETE`.
///
/// ```
/// use weir_state::mqtt::resp3::notification;
/// assert_eq!(notification(None), b"*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n");
/// assert!(notification(Some(b"on")).ends_with(b"$5\r\nVALUE\r\n$2\r\non\r\n"));
/// ```
pub fn notification(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => b"*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n".to_vec(),
        Some(value) => bulk(b"*4\r\n$6\r\nNOTIFY\r\n$3\r\nSET\r\n$5\r\nVALUE\r\n", value),
    }
}

fn bulk(prefix: &[u8], value: &[u8]) -> Vec<u8> {
    let length = value.len().to_string();
    let mut out = Vec::with_capacity(prefix.len() + length.len() + value.len() + 5);
    out.extend_from_slice(prefix);
    out.push(b'$');
    out.extend_from_slice(length.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", parts.len()).into_bytes();
        for part in parts {
            out.extend(format!("${}\r\n", part.len()).bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn set_with_every_option() {
        let payload = request(&[b"SET", b"k", b"v\r\nx", b"NEX", b"PX", b"1500"]);
        assert_eq!(
            Command::parse(&payload),
            Ok(Command::Set {
                key: b"k",
                value: b"v\r\nx",
                condition: SetCondition::OnlyIfEqualOrDoesNotExist,
                expires: Some(Duration::from_millis(1500)),
            })
        );
        let payload = request(&[b"set", b"k", b"", b"nx"]);
        assert!(matches!(
            Command::parse(&payload),
            Ok(Command::Set {
                value: b"",
                condition: SetCondition::OnlyIfDoesNotExist,
                expires: None,
                ..
            })
        ));
    }

    #[test]
    fn every_command() {
        assert_eq!(
            Command::parse(&request(&[b"DEL", b"k"])),
            Ok(Command::Del { key: b"k" })
        );
        assert_eq!(
            Command::parse(&request(&[b"VDEL", b"k", b"v"])),
            Ok(Command::VDel {
                key: b"k",
                value: b"v"
            })
        );
        assert_eq!(
            Command::parse(&request(&[b"KEYNOTIFY", b"k", b"STOP"])),
            Ok(Command::KeyNotify {
                key: b"k",
                stop: true
            })
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        use RequestError::*;
        for (payload, error) in [
            (request(&[b"FLUSHALL"]), UnknownCommand),
            (request(&[b"GET"]), WrongNumberOfArguments),
            (request(&[b"GET", b"a", b"b"]), WrongNumberOfArguments),
            (request(&[b"SET", b"k", b"v", b"PX"]), Syntax),
            (request(&[b"SET", b"k", b"v", b"PX", b"-5"]), Syntax),
            (request(&[b"SET", b"k", b"v", b"XX"]), Syntax),
            (b"*1\r\n$3\r\nGET".to_vec(), Syntax),
            (b"*2\r\n$3\r\nGET\r\n$99999999999\r\nk\r\n".to_vec(), Syntax),
            (b"*99\r\n".to_vec(), WrongNumberOfArguments),
            (b"*0\r\n".to_vec(), Syntax),
            (b"".to_vec(), Syntax),
            (b"GET k\r\n".to_vec(), Syntax),
            (
                [request(&[b"GET", b"k"]), b"junk".to_vec()].concat(),
                Syntax,
            ),
        ] {
            assert_eq!(Command::parse(&payload), Err(error), "{payload:?}");
        }
    }

    #[test]
    fn replies() {
        assert_eq!(Reply::Ok.encode(), b"+OK\r\n");
        assert_eq!(Reply::Nil.encode(), b"$-1\r\n");
        assert_eq!(Reply::Integer(1).encode(), b":1\r\n");
        assert_eq!(
            Reply::Error("syntax error").encode(),
            b"-ERR syntax error\r\n"
        );
    }
}
