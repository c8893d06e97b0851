"""Files, datasets and documents through cozepy against the real system (edge, registry,
NATS with its object store, knowledge workers), and retrieval through the Search RPC."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from cozepy import Coze, CozeAPIError
from cozepy.datasets.documents import (
    DocumentBase,
    DocumentChunkStrategy,
    DocumentSourceInfo,
    DocumentSourceType,
    DocumentStatus,
)

from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from tests.conftest import Account
from tests.knowledge.conftest import MAX_DOCUMENT_BYTES, b64, search, wait_processed
from tests.knowledge.documents import docx_with_text, pdf_with_text

ENGLISH = (
    "The Zephyrine Lighthouse stands on Gull Rock.\n"
    "Its lamp was first lit in 1871 and can be seen 22 nautical miles away.\n"
    "Keepers logged the tides every four hours."
)
CHINESE = (
    "紫禁城是明清两代的皇家宫殿。\n"
    "故宫博物院成立于一九二五年，收藏文物一百八十万件。\n"
    "太和殿是紫禁城中最大的宫殿。"
)


def new_dataset(coze: Coze, account: Account, name: str = "kb") -> str:
    created = coze.datasets.create(
        name=f"{name}-{secrets.token_hex(3)}", space_id=str(account.user_id), format_type=0
    )
    return created.dataset_id


def add_text(coze: Coze, dataset_id: str, name: str, text: str, file_type: str = "txt") -> str:
    created = coze.datasets.documents.create(
        dataset_id=dataset_id,
        document_bases=[
            DocumentBase(
                name=name, source_info=DocumentSourceInfo.build_local_file(text, file_type)
            )
        ],
    )
    return created[0].document_id


def test_upload_dataset_documents_process_and_list(
    coze: Coze, account: Account, tmp_path: object
) -> None:
    uploaded = coze.files.upload(file=("lighthouse.txt", ENGLISH.encode()))
    assert uploaded.file_name == "lighthouse.txt" and uploaded.bytes == len(ENGLISH.encode())
    assert uploaded.id.isdigit() and uploaded.created_at > 0
    retrieved = coze.files.retrieve(file_id=uploaded.id)
    assert (retrieved.id, retrieved.bytes) == (uploaded.id, uploaded.bytes)

    dataset_id = new_dataset(coze, account)
    created = coze.datasets.documents.create(
        dataset_id=dataset_id,
        document_bases=[
            DocumentBase(
                name="lighthouse", source_info=DocumentSourceInfo.build_file_id(uploaded.id)
            ),
            DocumentBase(name="故宫", source_info=DocumentSourceInfo.build_local_file(CHINESE)),
        ],
        chunk_strategy=DocumentChunkStrategy.build_custom(
            max_tokens=200, separator="\n", remove_extra_spaces=True
        ),
    )
    assert [d.name for d in created] == ["lighthouse", "故宫"]
    assert all(d.status == DocumentStatus.PROCESSING for d in created)
    assert created[0].source_type == DocumentSourceType.UPLOAD_FILE_ID
    assert created[1].source_type == DocumentSourceType.LOCAL_FILE

    ids = [d.document_id for d in created]
    progress = wait_processed(coze, dataset_id, ids)
    assert {p.status for p in progress.values()} == {DocumentStatus.COMPLETED}
    assert {p.progress for p in progress.values()} == {100}

    listed = list(coze.datasets.documents.list(dataset_id=dataset_id, page_size=1))
    assert [d.document_id for d in listed] == ids
    assert all(d.status == DocumentStatus.COMPLETED and d.slice_count >= 1 for d in listed)
    assert listed[0].char_count == len(ENGLISH) and listed[0].type == "txt"
    assert listed[1].chunk_strategy is not None and listed[1].chunk_strategy.max_tokens == 200

    datasets = list(coze.datasets.list(space_id=str(account.user_id)))
    mine = next(d for d in datasets if d.dataset_id == dataset_id)
    assert mine.doc_count == 2 and mine.slice_count >= 2
    assert mine.processing_file_list == [] and mine.failed_file_list == []


def test_search_finds_english_and_chinese_with_document_names(
    coze: Coze, account: Account, knowledge_rpc: KnowledgeStub
) -> None:
    dataset_id = new_dataset(coze, account)
    ids = [
        add_text(coze, dataset_id, "lighthouse.txt", ENGLISH),
        add_text(coze, dataset_id, "故宫.md", "# 故宫\n\n" + CHINESE, "md"),
    ]
    wait_processed(coze, dataset_id, ids)

    english = search(knowledge_rpc, account.user_id, [dataset_id], "When was the lamp first lit?")
    assert english.strategy == 20
    assert english.chunks[0].document_name == "lighthouse.txt"
    assert "1871" in english.chunks[0].content
    assert 0 < english.chunks[0].score <= 1

    chinese = search(knowledge_rpc, account.user_id, [dataset_id], "故宫博物院哪一年成立？")
    assert chinese.chunks[0].document_name == "故宫.md"
    assert "一九二五年" in chinese.chunks[0].content

    two_characters = search(knowledge_rpc, account.user_id, [dataset_id], "宫殿", top_k=1)
    assert len(two_characters.chunks) == 1 and "宫殿" in two_characters.chunks[0].content

    nothing = search(knowledge_rpc, account.user_id, [dataset_id], "quantum chromodynamics")
    assert list(nothing.chunks) == []
    strict = search(knowledge_rpc, account.user_id, [dataset_id], "lamp", min_score=0.999)
    assert list(strict.chunks) == []


def test_deleting_a_document_removes_it_from_search(
    coze: Coze, account: Account, knowledge_rpc: KnowledgeStub
) -> None:
    dataset_id = new_dataset(coze, account)
    keep = add_text(coze, dataset_id, "keep", "Marmots hibernate in alpine burrows.")
    drop = add_text(coze, dataset_id, "drop", "Marmots whistle to warn of eagles.")
    wait_processed(coze, dataset_id, [keep, drop])
    before = search(knowledge_rpc, account.user_id, [dataset_id], "marmots")
    assert {c.document_name for c in before.chunks} == {"keep", "drop"}

    coze.datasets.documents.delete(document_ids=[drop])

    after = search(knowledge_rpc, account.user_id, [dataset_id], "marmots eagles")
    assert {c.document_name for c in after.chunks} == {"keep"}
    assert [d.document_id for d in coze.datasets.documents.list(dataset_id=dataset_id)] == [keep]

    coze.datasets.delete(dataset_id=dataset_id)
    gone = search(knowledge_rpc, account.user_id, [dataset_id], "marmots")
    assert list(gone.chunks) == []


def test_pdf_docx_and_html_documents_are_parsed(
    coze: Coze, account: Account, knowledge_rpc: KnowledgeStub
) -> None:
    dataset_id = new_dataset(coze, account)
    created = coze.datasets.documents.create(
        dataset_id=dataset_id,
        document_bases=[
            DocumentBase(
                name="pdf",
                source_info=DocumentSourceInfo(
                    file_base64=b64(pdf_with_text("Narwhal tusks are elongated teeth")),
                    file_type="pdf",
                ),
            ),
            DocumentBase(
                name="docx",
                source_info=DocumentSourceInfo(
                    file_base64=b64(docx_with_text("Axolotls regrow limbs.", "蝾螈可以再生四肢。")),
                    file_type="docx",
                ),
            ),
            DocumentBase(
                name="html",
                source_info=DocumentSourceInfo(
                    file_base64=b64(
                        "<html><head><script>var tardigrade = 1;</script></head>"
                        "<body><h1>Pangolins</h1><p>Pangolins are covered in scales.</p>"
                        "</body></html>"
                    ),
                    file_type="html",
                ),
            ),
        ],
    )
    progress = wait_processed(coze, dataset_id, [d.document_id for d in created])
    assert {p.status for p in progress.values()} == {DocumentStatus.COMPLETED}, progress
    for query, name in (("narwhal", "pdf"), ("再生", "docx"), ("pangolins scales", "html")):
        found = search(knowledge_rpc, account.user_id, [dataset_id], query)
        assert found.chunks and found.chunks[0].document_name == name, query
    # Script content is not document text.
    assert list(search(knowledge_rpc, account.user_id, [dataset_id], "tardigrade").chunks) == []


def test_corrupt_empty_and_oversized_documents_fail_with_a_reason_and_block_nothing(
    coze: Coze, account: Account
) -> None:
    dataset_id = new_dataset(coze, account)
    bases = [
        (
            "corrupt.pdf",
            DocumentSourceInfo(file_base64=b64(b"%PDF-1.4 not really"), file_type="pdf"),
        ),
        ("corrupt.docx", DocumentSourceInfo(file_base64=b64(b"PK\x03\x04 nope"), file_type="docx")),
        ("empty.txt", DocumentSourceInfo(file_base64="", file_type="txt")),
        ("blank.txt", DocumentSourceInfo.build_local_file("   \n\n  ")),
        ("huge.txt", DocumentSourceInfo.build_local_file("x" * (MAX_DOCUMENT_BYTES + 1))),
        ("binary.txt", DocumentSourceInfo(file_base64=b64(b"\x00\x01\x02\xff"), file_type="txt")),
        ("fine.txt", DocumentSourceInfo.build_local_file("Okapis are relatives of giraffes.")),
    ]
    created = coze.datasets.documents.create(
        dataset_id=dataset_id,
        document_bases=[DocumentBase(name=n, source_info=s) for n, s in bases],
    )
    progress = wait_processed(coze, dataset_id, [d.document_id for d in created])
    by_name = {p.document_name: p for p in progress.values()}
    expected = {
        "corrupt.pdf": "could not read the PDF",
        "corrupt.docx": "could not read the DOCX",
        "empty.txt": "the document is empty",
        "blank.txt": "contains no text",
        "huge.txt": f"the limit is {MAX_DOCUMENT_BYTES} bytes",
        "binary.txt": "not text",
    }
    for name, reason in expected.items():
        assert by_name[name].status == DocumentStatus.FAILED, name
        assert reason in by_name[name].status_descript, (name, by_name[name].status_descript)
    assert by_name["fine.txt"].status == DocumentStatus.COMPLETED
    dataset = next(
        d for d in coze.datasets.list(space_id=str(account.user_id)) if d.dataset_id == dataset_id
    )
    assert sorted(dataset.failed_file_list) == sorted(expected)


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (
            {"name": "x", "source_info": {"file_base64": "%%%", "file_type": "txt"}},
            "not valid base64",
        ),
        ({"name": "x", "source_info": {"file_base64": "eA==", "file_type": "exe"}}, "file_type"),
        ({"name": "x", "source_info": {}}, "needs file_base64, source_file_id or web_url"),
        (
            {"name": "x", "source_info": {"web_url": "ftp://example.com", "document_source": 1}},
            "web_url must be an http or https URL",
        ),
        ({"name": "x", "source_info": {"source_file_id": "123"}}, "file 123 not found"),
    ],
)
def test_bad_documents_are_refused_and_store_nothing(
    coze: Coze, account: Account, base: dict[str, object], message: str
) -> None:
    dataset_id = new_dataset(coze, account)
    with pytest.raises(CozeAPIError) as raised:
        coze._requester.request(  # the raw body: cozepy's models would refuse these first
            "post",
            f"{coze._base_url}/open_api/knowledge/document/create",
            False,
            dict,  # type: ignore[arg-type]
            body={"dataset_id": dataset_id, "document_bases": [base]},
        )
    assert raised.value.code in (400, 404)
    assert message in (raised.value.msg or "")
    assert list(coze.datasets.documents.list(dataset_id=dataset_id)) == []


def test_another_account_sees_none_of_it(
    coze: Coze,
    account: Account,
    make_account: Callable[..., Account],
    knowledge_system: str,
    knowledge_rpc: KnowledgeStub,
) -> None:
    from cozepy import TokenAuth

    uploaded = coze.files.upload(file=("secret.txt", b"The vault code is 4711."))
    dataset_id = new_dataset(coze, account)
    document_id = add_text(coze, dataset_id, "secret", "The vault code is 4711.")
    wait_processed(coze, dataset_id, [document_id])

    other = make_account()
    intruder = Coze(auth=TokenAuth(other.token), base_url=knowledge_system)
    calls: list[Callable[[], object]] = [
        lambda: intruder.files.retrieve(file_id=uploaded.id),
        lambda: intruder.datasets.process(dataset_id=dataset_id, document_ids=[document_id]),
        lambda: list(intruder.datasets.documents.list(dataset_id=dataset_id)),
        lambda: intruder.datasets.update(dataset_id=dataset_id, name="mine now"),
        lambda: intruder.datasets.delete(dataset_id=dataset_id),
        lambda: intruder.datasets.documents.update(document_id=document_id, document_name="x"),
        lambda: intruder.datasets.documents.delete(document_ids=[document_id]),
        lambda: add_text(intruder, dataset_id, "plant", "planted"),
    ]
    for call in calls:
        with pytest.raises(CozeAPIError) as raised:
            call()
        assert raised.value.code == 404, raised.value

    # Their own dataset cannot take the victim's file.
    theirs = new_dataset(intruder, other)
    with pytest.raises(CozeAPIError) as raised:
        intruder.datasets.documents.create(
            dataset_id=theirs,
            document_bases=[
                DocumentBase(name="x", source_info=DocumentSourceInfo.build_file_id(uploaded.id))
            ],
        )
    assert raised.value.code == 404
    with pytest.raises(CozeAPIError) as raised:
        list(intruder.datasets.list(space_id=str(account.user_id)))
    assert raised.value.code == 403
    assert [d.dataset_id for d in intruder.datasets.list(space_id=str(other.user_id))] == [theirs]
    stolen = search(knowledge_rpc, other.user_id, [dataset_id], "vault code")
    assert list(stolen.chunks) == []

    # And the owner's things are untouched.
    assert [d.name for d in coze.datasets.documents.list(dataset_id=dataset_id)] == ["secret"]
    assert search(knowledge_rpc, account.user_id, [dataset_id], "vault code").chunks
