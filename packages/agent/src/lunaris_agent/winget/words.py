"""What winget prints, in the languages it speaks: the header labels, titles, trailers and
messages the parse recognises. Data only.

Localised strings from winget's ``.resw`` tables, plus older wordings. winget's UI follows the
Windows display language, so these are hints: the parse is carried by the table's structure
(:mod:`lunaris_agent.winget.tables`), and these only name the 4th column and recognise the
explicit-targeting title and the "nothing to upgrade" messages.
"""

from __future__ import annotations

import re
from typing import Final


def fold_message(text: str) -> str:
    """A message as the tables compare it: case, spacing and the closing punctuation ignored."""
    return " ".join(text.casefold().split()).rstrip(" .:;!。：")


AVAILABLE_LABELS: Final = frozenset(
    fold_message(label)
    for label in (
        "Available",
        "Verfügbar",
        "Disponible",
        "Disponibile",
        "利用可能",
        "사용 가능",
        "Disponível",
        "Доступно",
        "可用",
    )
)
SOURCE_LABELS: Final = frozenset(
    fold_message(label)
    for label in (
        "Source",
        "Quelle",
        "Origen",
        "Origine",
        "ソース",
        "원본",
        "Origem",
        "Источник",
        "源",
        "來源",
    )
)
# Labels that contain a space (ko-KR), so a header split on spaces must merge them back.
MULTIWORD_LABELS: Final = frozenset({fold_message("장치 ID"), fold_message("사용 가능")})
MAX_LABEL_WORDS: Final = 3

# "Nothing matched": `winget upgrade` lists no upgradable package, or `upgrade --id` finds no
# installed package with that id (terminated with APPINSTALLER_CLI_ERROR_NO_APPLICATIONS_FOUND).
NO_INSTALLED_PACKAGE_MESSAGES: Final = (
    "No installed package found matching input criteria.",
    "Es wurde kein installiertes Paket gefunden, das den Eingabekriterien entspricht.",
    "No se encontró ningún paquete que coincida con los criterios de entrada.",
    "Aucun package installé ne correspond aux critères saisis.",
    "Non è stato trovato alcun pacchetto installato corrispondente ai criteri di input.",
    "入力条件に一致するインストール済みのパッケージが見つかりませんでした。",
    "입력 조건과 일치하는 설치된 패키지를 찾을 수 없습니다.",
    "Nenhum pacote instalado foi encontrado que corresponda aos critérios de entrada.",
    "Не найдены установленные пакеты, соответствующие введенным условиям.",
    "找不到与输入条件匹配的已安装程序包。",
    "未找到符合輸入條件的已安裝套件。",
)
# "Nothing to apply": the package is installed but no newer (or no applicable) version exists
# (terminated with APPINSTALLER_CLI_ERROR_UPDATE_NOT_APPLICABLE), with the reasons en-US adds.
NO_APPLICABLE_UPGRADE_MESSAGES: Final = (
    # en-US, current and older wordings
    "No applicable upgrade found.",
    "No available upgrade found.",
    "No applicable update found.",
    "No newer package versions are available from the configured sources.",
    "A newer package version is available in a configured source, but it does not apply to "
    "your system or requirements.",
    # de-DE
    "Es wurde kein anwendbares Upgrade gefunden.",
    "Kein verfügbares Upgrade gefunden.",
    "Es wurden keine anwendbaren Aktualisierungen gefunden.",
    # es-ES
    "No se ha encontrado ninguna actualización aplicable.",
    "No se ha encontrado ninguna actualización disponible.",
    # fr-FR
    "Aucune mise à niveau applicable trouvée.",
    "Mise à niveau disponible introuvable.",
    # it-IT
    "Non è stato trovato alcun aggiornamento applicabile.",
    "Non sono stati trovati aggiornamenti disponibili.",
    # ja-JP
    "適用可能なアップグレードは見つかりませんでした。",
    "利用可能なアップグレードが見つかりませんでした。",
    # ko-KR
    "적용 가능한 업그레이드를 찾을 수 없습니다.",
    "사용 가능한 업그레이드를 찾을 수 없습니다.",
    # pt-BR
    "Nenhuma atualização aplicável foi encontrada.",
    "Nenhuma atualização disponível foi encontrada.",
    # ru-RU
    "Применимые обновления не найдены.",
    "Доступные обновления не найдены.",
    # zh-CN
    "找不到适用的升级。",
    "找不到可用的升级。",
    # zh-TW
    "找不到適用的升級。",
    "找不到可用的升級。",
)
# `upgrade --id X --version V` when V is not in the source: "No version found matching: V"
# (GetManifestResultVersionNotFound, WorkflowBase.cpp; terminated with NO_MANIFEST_FOUND). The
# text before the version, in each language.
VERSION_NOT_FOUND_PREFIXES: Final = (
    "No version found matching",
    "Es wurde keine übereinstimmende Version gefunden",
    "No se encontró ninguna versión que coincida",
    "Aucune version correspondante trouvée",
    "Non sono state trovate versioni corrispondenti",
    "一致するバージョンが見つかりません",
    "일치하는 버전을 찾을 수 없는 경우",
    "Nenhuma versão correspondente foi encontrada",
    "Не найдены совпадающие версии",
    "找不到匹配的版本",
    "找不到相符的版本",
)

NO_INSTALLED_PACKAGE: Final = frozenset(map(fold_message, NO_INSTALLED_PACKAGE_MESSAGES))
NO_APPLICABLE_UPGRADE: Final = frozenset(map(fold_message, NO_APPLICABLE_UPGRADE_MESSAGES))
VERSION_NOT_FOUND: Final = tuple(map(fold_message, VERSION_NOT_FOUND_PREFIXES))
NOTHING_MESSAGES: Final = NO_INSTALLED_PACKAGE | NO_APPLICABLE_UPGRADE

EXPLICIT_TITLES: Final = frozenset(
    fold_message(title)
    for title in (
        "The following packages have an upgrade available, but require explicit targeting for "
        "upgrade:",
        "Für die folgenden Pakete ist ein Upgrade verfügbar, für das Upgrade ist jedoch eine "
        "explizite Zielgruppenadressierung erforderlich:",
        "Los siguientes paquetes tienen una actualización disponible, pero requieren un destino "
        "explícito para la actualización:",
        "Les packages suivants ont une mise à niveau disponible, mais nécessitent un ciblage "
        "explicite pour la mise à niveau :",
        "Per i pacchetti seguenti è disponibile un aggiornamento, ma è necessario un targeting "
        "esplicito per l'aggiornamento:",
        "次のパッケージにはアップグレードを適用可能ですが、アップグレードには明示的対象化が必要です:",
        "다음 패키지에는 업그레이드를 사용할 수 있지만 업그레이드를 위해 명시적 대상 지정이 "
        "필요합니다.",
        "Os pacotes a seguir têm uma atualização disponível, mas exigem uma segmentação explícita "
        "para atualização:",
        "Для следующих пакетов доступно обновление, но для обновления требуется явный выбор "
        "целевого объекта.",
        "以下程序包有可用的升级，但需要显式目标才能进行升级：",
        "以下套件有可用的升級，但需要升級的明確顯示目標:",
    )
)
# Translations drift between releases: the word "explicit" survives in each of them.
EXPLICIT_KEYWORDS: Final = (
    "explicit",  # en, fr (explicite)
    "explizit",  # de
    "explícit",  # es, pt-BR
    "esplicit",  # it
    "明示的",  # ja
    "명시적",  # ko
    "явный",  # ru
    "显式",  # zh-CN
    "明確",  # zh-TW
)

COUNT_TEMPLATES: Final = (
    "{0} upgrades available.",
    "{0} upgrade available.",
    "{0} Aktualisierungen verfügbar.",
    "{0} actualizaciones disponibles.",
    "{0} mises à niveau disponibles.",
    "{0} aggiornamenti disponibili.",
    "{0} アップグレードを利用できます。",
    "{0} 업그레이드를 사용할 수 있습니다.",
    "{0} atualizações disponíveis.",
    "Доступны обновления: {0}.",
    "{0} 升级可用。",
    "{0} 個升級可供使用。",
)
COUNT_RES: Final = tuple(
    re.compile(re.escape(fold_message(template)).replace(re.escape("{0}"), r"(\d+)"))
    for template in COUNT_TEMPLATES
)

# The trailers name winget's own (untranslated) arguments, whatever the UI language.
TRAILER_FLAGS: Final = ("--include-unknown", "--include-pinned", "winget pin")

# winget prints these in English only; the HRESULT line that usually follows carries the code.
FATAL_PREFIXES: Final = (
    "Failed when searching source:",
    "An unexpected error occurred while executing the command",
)
AGREEMENT_DECLINED: Final = "One or more of the source agreements were not agreed to"

# "Failed when searching source; results will not be included: {0}" (SearchFailureWarning):
# `list` treats a source's failure as a warning and goes on, showing the packages that source
# would have named under their local ids. The text before the source's name, in each language.
SEARCH_FAILURE_WARNING_PREFIXES: Final = (
    "Failed when searching source; results will not be included",
    "Fehler beim Durchsuchen der Quelle. Ergebnisse werden nicht einbezogen",
    "Error al buscar en el origen, los resultados no se incluirán",
    "Échec lors de la recherche de la source ; les résultats ne seront pas inclus",
    "Errore durante la ricerca nell'origine; i risultati non verranno inclusi",
    "ソースの検索中にエラーが発生しました;結果は含まれません",
    "원본을 검색하는 동안 실패했습니다. 결과가 포함되지 않습니다.",
    "Falha ao pesquisar origem; os resultados não serão incluídos",
    "Сбой при поиске в источнике; результаты не будут включены",
    "搜索源时失败;结果将不包括在内",
    "搜尋來源時失敗; 將不會包含結果",
)
SEARCH_FAILURE_WARNINGS: Final = tuple(map(fold_message, SEARCH_FAILURE_WARNING_PREFIXES))
