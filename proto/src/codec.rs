//! The protobuf codec of the control API: tonic-prost's, except that a message that does not
//! decode is the caller's error (INVALID_ARGUMENT, naming what failed), not the server's
//! (tonic-prost answers INTERNAL). Bad input never gets INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// [`ProstCodec`] with decode errors mapped to INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ArgumentCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for ArgumentCodec<T, U> {
    fn default() -> Self {
        Self {
            inner: ProstCodec::default(),
        }
    }
}

impl<T, U> Codec for ArgumentCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ArgumentDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ArgumentDecoder {
            _pd: PhantomData,
            buffer_settings: BufferSettings::default(),
        }
    }
}

/// Decodes `U`; a malformed message is INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ArgumentDecoder<U> {
    _pd: PhantomData<U>,
    buffer_settings: BufferSettings,
}

impl<U: Message + Default> Decoder for ArgumentDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        U::decode(buf).map(Some).map_err(|err| {
            Status::invalid_argument(format!("the message does not decode as protobuf: {err}"))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffer_settings
    }
}
