/* For the Wine test only (install_test.py), never for the MSI: Wine 8 has no
 * bcryptprimitives.dll, and pydantic-core (Rust's standard library) imports ProcessPrng
 * from it. Windows 10 and later, and Wine 9 and later, have it. This one fills the buffer
 * from advapi32's RtlGenRandom (SystemFunction036), which Wine 8 has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length) {
        /* RtlGenRandom takes a ULONG length; ask for at most 1 GiB at a time. */
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
