"""The spec's worked example as test vectors: CRC, shared key, authenticators, encrypted frame."""

from __future__ import annotations

from agent.locks.nuki import crypto, frames
from agent.locks.nuki.channel import EncryptedChannel, messages_only
from agent.locks.nuki.const import Command, IdType
from agent.locks.nuki.messages import AuthorizationData, RequestData

LOCK_PK = bytes.fromhex("2FE57DA347CD62431528DAAC5FBB290730FFF684AFC4CFC2ED90995F58CB3B74")
CLIENT_SK = bytes.fromhex("8CAA54672307BFFDF5EA183FC607158D2011D008ECA6A1088614FF0853A5AA07")
CLIENT_PK = bytes.fromhex("F88127CCF48023B5CBE9101D24BAA8A368DA94E8C2E3CDE2DED29CE96AB50C15")
SHARED = bytes.fromhex("217FCB0F18CAF284E9BDEA0B94B83B8D10867ED706BFDEDBD2381F4CB3B8F730")
ENCRYPTED = bytes.fromhex(
    "37917F1AF31EC5940705F34D1E5550607D5B2F9FE7D496B6"
    "02000000"
    "1A00"
    "670D124926004366532E8D927A33FE84E782A9594D39157D065E"
)


def test_crc_check_value_and_plain_frame() -> None:
    assert frames.crc16(bytes.fromhex("01000300")) == 0xA727
    frame = frames.encode_plain(Command.REQUEST_DATA, bytes.fromhex("0300"))
    assert frame == bytes.fromhex("0100030027A7")
    assert frames.decode_plain(frame) == (Command.REQUEST_DATA, b"\x03\x00")


def test_public_key_and_shared_key() -> None:
    assert crypto.public_key(CLIENT_SK) == CLIENT_PK
    assert crypto.shared_key(LOCK_PK, CLIENT_SK) == SHARED


def test_step3_authenticator() -> None:
    nonce = bytes.fromhex("6CD4163D159050C798553EAA57E278A579AFFCBC56F09FC57FE879E51C42DF17")
    expected = "B09A0D3979A029E5FD027B519EAA200BC14AD3E163D3BE4563843E021073BCB1"
    assert crypto.authenticator(SHARED, CLIENT_PK, LOCK_PK, nonce).hex().upper() == expected


def test_step4_authorization_data_authenticator() -> None:
    lock_nonce = bytes.fromhex("E0742CFEA39CB46109385BF91286A3C02F40EE86B0B62FC34033094DE41E2C0D")
    client_nonce = bytes.fromhex("52AFE0A664B4E9B56DC6BD4CB718A6C9FED6BE17A7411072AA0D315378140577")
    signed = AuthorizationData.signed(IdType.APP, 0, "Marc (Test)", client_nonce)
    mac = crypto.authenticator(SHARED, signed, lock_nonce)
    assert mac.hex().upper() == "CF1B9E7801E3196E6594E76D57908EE500AAD5C33F4B6E0BBEA0DDEF82967BFC"
    message = AuthorizationData(mac, IdType.APP, 0, "Marc (Test)", client_nonce)
    assert AuthorizationData.from_bytes(message.to_bytes()) == message


def test_encrypted_request_data_decodes_and_reencodes_identically() -> None:
    assert frames.decode_encrypted(SHARED, ENCRYPTED) == (2, Command.REQUEST_DATA, b"\x0c\x00")
    again = frames.encode_encrypted(SHARED, 2, Command.REQUEST_DATA, b"\x0c\x00", ENCRYPTED[:24])
    assert again == ENCRYPTED
    inner = crypto.unseal(SHARED, ENCRYPTED[:24], ENCRYPTED[30:])
    assert inner == bytes.fromhex("020000000100 0C00 418D".replace(" ", ""))


def test_encrypted_channel_yields_the_typed_message() -> None:
    channel = EncryptedChannel(SHARED, 2)
    assert messages_only(channel.feed(ENCRYPTED)) == [RequestData(Command.KEYTURNER_STATES)]
